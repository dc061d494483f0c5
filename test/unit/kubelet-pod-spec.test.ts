// applyPodDefaults against pkg/apis/core/v1/defaults.go; validatePod against the field errors of
// pkg/apis/core/validation (`<field>: Required value`, `Duplicate value: "x"`, `Unsupported value: …`).
import { describe, expect, it } from 'vitest';
import type { Container, Pod } from 'kubernetes-types/core/v1';
import { applyPodDefaults, formatFieldErrors, validatePod, type FieldError } from '../../src/kubelet/pod/pod-spec.ts';

const bare = (containers: Partial<Container>[], extra: Partial<Pod['spec']> = {}): Pod =>
  ({ metadata: { name: 'web' }, spec: { containers: containers as Container[], ...extra } }) as Pod;
const defaulted = (c: Partial<Container>, extra: Partial<Pod['spec']> = {}): Container => applyPodDefaults(bare([{ name: 'app', ...c }], extra)).spec!.containers[0]!;

describe('applyPodDefaults', () => {
  it.each([
    ['nginx', 'Always'],
    ['nginx:latest', 'Always'],
    ['nginx:1.25', 'IfNotPresent'],
    ['docker.io/library/nginx', 'Always'],
    ['localhost:5000/app', 'Always'],
    ['localhost:5000/app:v1', 'IfNotPresent'],
    ['localhost:5000/app:latest', 'Always'],
    ['nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000', 'IfNotPresent'],
    // ParseImageName: a reference with both tag and digest keeps the tag, and the tag is "latest".
    ['nginx:latest@sha256:0000000000000000000000000000000000000000000000000000000000000000', 'Always'],
  ])('image %s → imagePullPolicy %s', (image, policy) => {
    expect(defaulted({ image }).imagePullPolicy).toBe(policy);
  });

  it('keeps an explicit imagePullPolicy', () => {
    expect(defaulted({ image: 'nginx', imagePullPolicy: 'Never' }).imagePullPolicy).toBe('Never');
  });

  it('pod-level defaults', () => {
    const p = applyPodDefaults(bare([{ name: 'app', image: 'nginx:1' }]));
    expect(p.metadata?.namespace).toBe('default');
    expect(p.spec).toMatchObject({
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
      terminationGracePeriodSeconds: 30,
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      securityContext: {},
    });
  });

  it('keeps explicit values, including terminationGracePeriodSeconds 0 and a namespace', () => {
    const p = applyPodDefaults({ ...bare([{ name: 'app', image: 'nginx:1' }], { terminationGracePeriodSeconds: 0, restartPolicy: 'Never' }), metadata: { name: 'web', namespace: 'kube-system' } });
    expect(p.spec?.terminationGracePeriodSeconds).toBe(0);
    expect(p.spec?.restartPolicy).toBe('Never');
    expect(p.metadata?.namespace).toBe('kube-system');
  });

  it('container defaults: termination message, port protocol', () => {
    const c = defaulted({ image: 'nginx:1', ports: [{ containerPort: 80 }] });
    expect(c).toMatchObject({ terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', ports: [{ containerPort: 80, protocol: 'TCP' }] });
  });

  it('hostNetwork pods: hostPort defaults to containerPort', () => {
    const c = defaulted({ image: 'nginx:1', ports: [{ containerPort: 8080 }] }, { hostNetwork: true });
    expect(c.ports?.[0]?.hostPort).toBe(8080);
  });

  it('requests default to limits, for app and init containers; explicit requests are kept', () => {
    const p = applyPodDefaults(
      bare([{ name: 'app', image: 'nginx:1', resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '250m' } } }], {
        initContainers: [{ name: 'init', image: 'busybox:1', resources: { limits: { memory: '64Mi' } } }],
      }),
    );
    expect(p.spec?.containers[0]?.resources?.requests).toEqual({ cpu: '250m', memory: '1Gi' });
    expect(p.spec?.initContainers?.[0]?.resources?.requests).toEqual({ memory: '64Mi' });
  });

  it('no limits → requests untouched', () => {
    expect(defaulted({ image: 'nginx:1', resources: { requests: { cpu: '1' } } }).resources).toEqual({ requests: { cpu: '1' } });
  });

  it('probe defaults (timeout 1, period 10, success 1, failure 3; httpGet path / scheme HTTP)', () => {
    const c = defaulted({ image: 'nginx:1', livenessProbe: { httpGet: { port: 80 } }, readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 3 } });
    expect(c.livenessProbe).toEqual({ httpGet: { port: 80, path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 });
    expect(c.readinessProbe).toMatchObject({ periodSeconds: 3, timeoutSeconds: 1, failureThreshold: 3 });
  });

  it('fieldRef apiVersion defaults to v1; a volume without a source is an emptyDir', () => {
    const p = applyPodDefaults(
      bare([{ name: 'app', image: 'nginx:1', env: [{ name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] }], { volumes: [{ name: 'scratch' }] }),
    );
    expect(p.spec?.containers[0]?.env?.[0]?.valueFrom?.fieldRef?.apiVersion).toBe('v1');
    expect(p.spec?.volumes?.[0]).toEqual({ name: 'scratch', emptyDir: {} });
  });

  it('is idempotent', () => {
    const once = applyPodDefaults(bare([{ name: 'app', image: 'nginx', resources: { limits: { cpu: '1' } }, livenessProbe: { exec: { command: ['true'] } } }]));
    const twice = applyPodDefaults(structuredClone(once));
    expect(twice).toEqual(once);
  });
});

describe('validatePod', () => {
  const valid = (): Pod =>
    ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
      spec: {
        restartPolicy: 'Always',
        initContainers: [{ name: 'init', image: 'busybox:1.36', command: ['sh', '-c', 'true'] }],
        containers: [
          {
            name: 'app',
            image: 'nginx:1.25',
            ports: [{ containerPort: 80, hostPort: 8080, protocol: 'TCP' }],
            env: [{ name: 'MODE', value: 'prod' }],
            resources: { limits: { cpu: '500m', memory: '128Mi' } },
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
            livenessProbe: { httpGet: { port: 'http' }, periodSeconds: 5 },
          },
        ],
        volumes: [{ name: 'data', emptyDir: {} }],
      },
    }) as Pod;

  it('a valid pod gives no errors, before and after defaulting', () => {
    expect(validatePod(valid())).toEqual([]);
    expect(validatePod(applyPodDefaults(valid()))).toEqual([]);
  });

  const errorCases: { name: string; mutate: (p: Pod) => void; want: FieldError }[] = [
    { name: 'missing image', mutate: (p) => delete p.spec!.containers[0]!.image, want: { field: 'spec.containers[0].image', detail: 'Required value' } },
    {
      name: 'duplicate container names',
      mutate: (p) => p.spec!.containers.push({ name: 'app', image: 'nginx:1' }),
      want: { field: 'spec.containers[1].name', detail: 'Duplicate value: "app"' },
    },
    {
      name: 'init container named like an app container',
      mutate: (p) => (p.spec!.initContainers![0]!.name = 'app'),
      want: { field: 'spec.initContainers[0].name', detail: 'Duplicate value: "app"' },
    },
    { name: 'missing container name', mutate: (p) => (p.spec!.containers[0]!.name = ''), want: { field: 'spec.containers[0].name', detail: 'Required value' } },
    {
      name: 'missing pod name',
      mutate: (p) => delete p.metadata!.name,
      want: { field: 'metadata.name', detail: 'Required value: name or generateName is required' },
    },
    {
      name: 'bad restartPolicy',
      mutate: (p) => (p.spec!.restartPolicy = 'Sometimes'),
      want: { field: 'spec.restartPolicy', detail: 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"' },
    },
    {
      name: 'containerPort out of range',
      mutate: (p) => (p.spec!.containers[0]!.ports![0]!.containerPort = 70000),
      want: { field: 'spec.containers[0].ports[0].containerPort', detail: 'Invalid value: 70000: must be between 1 and 65535, inclusive' },
    },
    {
      name: 'hostPort out of range',
      mutate: (p) => (p.spec!.containers[0]!.ports![0]!.hostPort = 65536),
      want: { field: 'spec.containers[0].ports[0].hostPort', detail: 'Invalid value: 65536: must be between 1 and 65535, inclusive' },
    },
    {
      name: 'missing containerPort',
      mutate: (p) => delete (p.spec!.containers[0]!.ports![0] as { containerPort?: number }).containerPort,
      want: { field: 'spec.containers[0].ports[0].containerPort', detail: 'Required value' },
    },
    {
      name: 'bad protocol',
      mutate: (p) => (p.spec!.containers[0]!.ports![0]!.protocol = 'ICMP'),
      want: { field: 'spec.containers[0].ports[0].protocol', detail: 'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"' },
    },
    {
      name: 'image of the wrong type',
      mutate: (p) => ((p.spec!.containers[0] as unknown as { image: unknown }).image = 5),
      want: { field: 'spec.containers[0].image', detail: 'Invalid value: 5: must be of type string, got number' },
    },
    {
      name: 'command as a string',
      mutate: (p) => ((p.spec!.containers[0] as unknown as { command: unknown }).command = 'sh -c true'),
      want: { field: 'spec.containers[0].command', detail: 'Invalid value: "sh -c true": must be of type array, got string' },
    },
    {
      name: 'containers as an object',
      mutate: (p) => ((p.spec as unknown as { containers: unknown }).containers = { name: 'app' }),
      want: { field: 'spec.containers', detail: 'Invalid value: {"name":"app"}: must be of type array, got object' },
    },
    {
      name: 'bad quantity',
      mutate: (p) => (p.spec!.containers[0]!.resources = { limits: { memory: '1 GB' } }),
      want: { field: 'spec.containers[0].resources.limits[memory]', detail: 'Invalid value: "1 GB": must be a valid quantity' },
    },
    {
      name: 'volumeMount of an undeclared volume',
      mutate: (p) => (p.spec!.volumes = []),
      want: { field: 'spec.containers[0].volumeMounts.name', detail: 'Not found: "data"' },
    },
    {
      name: 'probe without a handler',
      mutate: (p) => (p.spec!.containers[0]!.livenessProbe = { periodSeconds: 5 }),
      want: { field: 'spec.containers[0].livenessProbe', detail: 'Required value: must specify a handler type' },
    },
  ];
  it.each(errorCases)('$name', ({ mutate, want }) => {
    const p = valid();
    mutate(p);
    expect(validatePod(p)).toContainEqual(want);
  });

  it.each(['Web', 'web_1', '-web', 'web-', 'a'.repeat(64)])('invalid container name %j → RFC 1123 label message', (name) => {
    const p = valid();
    p.spec!.containers[0]!.name = name;
    const errs = validatePod(p).filter((e) => e.field === 'spec.containers[0].name');
    expect(errs).toHaveLength(1);
    expect(errs[0]!.detail).toMatch(new RegExp(`^Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`));
  });

  it('invalid pod name → RFC 1123 subdomain message', () => {
    const p = valid();
    p.metadata!.name = 'Web_Pod';
    expect(validatePod(p)).toEqual([
      { field: 'metadata.name', detail: expect.stringMatching(/^Invalid value: "Web_Pod": a lowercase RFC 1123 subdomain must consist of/) },
    ]);
  });

  it('reports every problem at once, and formats them upstream-style', () => {
    const p = valid();
    delete p.spec!.containers[0]!.image;
    p.spec!.restartPolicy = 'Sometimes';
    p.spec!.containers.push({ name: 'app', image: 'x' });
    const errs = validatePod(p);
    expect(errs.map((e) => e.field)).toEqual(expect.arrayContaining(['spec.containers[0].image', 'spec.containers[1].name', 'spec.restartPolicy']));
    expect(formatFieldErrors(errs.slice(0, 1))).toBe('spec.containers[0].image: Required value');
  });

  it('not an object / no spec', () => {
    expect(validatePod('pod')).toEqual([{ field: '', detail: 'Invalid value: "pod": must be of type object, got string' }]);
    expect(validatePod({ metadata: { name: 'x' } })).toEqual([{ field: 'spec.containers', detail: 'Required value' }]);
    expect(validatePod({ metadata: { name: 'x' }, spec: { containers: [] } })).toEqual([{ field: 'spec.containers', detail: 'Required value' }]);
  });
});
