// Normalisation of Services / EndpointSlices (v1, v1beta1) / Endpoints and the change trackers.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/index.ts';
import { ChangeSet, EndpointsChangeTracker, ServiceChangeTracker } from '../../src/proxy/change-tracker.ts';
import { normalizeEndpointSlice, normalizeService } from '../../src/proxy/normalize.ts';
import type { EndpointSliceV1beta1 } from '../../src/proxy/types.ts';
import { endpointsObject, service, slice } from './proxy-fixtures.ts';

describe('normalizeService', () => {
  it('skips headless, ExternalName and IPv6-only Services without complaint', () => {
    for (const s of [
      service('ns', 'h', { clusterIP: 'None', ports: [{ port: 80 }] }),
      service('ns', 'x', { type: 'ExternalName', externalName: 'example.com' }),
      service('ns', 'v6', { clusterIP: 'fd00::1', clusterIPs: ['fd00::1'], ports: [{ port: 80 }] }),
      service('ns', 'pending', { ports: [{ port: 80 }] }),
    ]) {
      expect(normalizeService(s)).toEqual({ value: [], problems: [] });
    }
  });

  it('takes the IPv4 clusterIP of a dual-stack Service and drops other-family addresses quietly', () => {
    const n = normalizeService(
      service('ns', 'ds', { clusterIP: 'fd00::5', clusterIPs: ['fd00::5', '10.96.0.5'], externalIPs: ['fd00::9', '1.2.3.4'], ports: [{ port: 80 }] }),
    );
    expect(n.problems).toEqual([]);
    expect(n.value[0]).toMatchObject({ clusterIP: '10.96.0.5', externalIPs: ['1.2.3.4'] });
  });

  it('reports and skips bad parts, keeping the rest', () => {
    const n = normalizeService(
      service('ns', 'bad', {
        clusterIP: '10.96.0.7',
        externalIPs: ['1.2.3', '1.2.3.4'],
        loadBalancerSourceRanges: ['10.0.0.0/33', ' 192.168.1.7/24 '],
        ports: [
          { name: 'ok', port: 80 },
          { name: 'big', port: 70000 },
          { name: 'icmp', port: 1, protocol: 'ICMP' },
          { name: 'np', port: 81, nodePort: 99999 },
        ],
      }),
    );
    expect(n.value.map((p) => p.portName)).toEqual(['ok']);
    expect(n.value[0]).toMatchObject({ externalIPs: ['1.2.3.4'], loadBalancerSourceRanges: ['192.168.1.0/24'], loadBalancerSourceRangesDenyAll: false });
    expect(n.problems).toEqual([
      'invalid externalIP "1.2.3"',
      'invalid loadBalancerSourceRange "10.0.0.0/33"',
      'port "big": port 70000 out of range',
      'port "icmp": unsupported protocol "ICMP"',
      'port "np": nodePort 99999 out of range',
    ]);
  });

  it('an invalid clusterIP makes the whole Service unproxied', () => {
    const n = normalizeService(service('ns', 'b', { clusterIP: '10.96.0.300', ports: [{ port: 80 }] }));
    expect(n.value).toEqual([]);
    expect(n.problems).toEqual(['invalid clusterIP "10.96.0.300"']);
  });

  it('fails closed when every source range is invalid', () => {
    const n = normalizeService(service('ns', 'fw', { type: 'LoadBalancer', clusterIP: '10.96.0.8', loadBalancerSourceRanges: ['nope'], ports: [{ port: 80, nodePort: 30000 }] }));
    expect(n.value[0]).toMatchObject({ loadBalancerSourceRanges: [], loadBalancerSourceRangesDenyAll: true });
  });

  it('defaults: affinity timeout 10800, health check only for LoadBalancer + Local', () => {
    const a = normalizeService(service('ns', 'a', { clusterIP: '10.96.0.1', sessionAffinity: 'ClientIP', ports: [{ port: 80 }] })).value[0]!;
    expect(a.affinityTimeoutSeconds).toBe(10800);
    const np = normalizeService(
      service('ns', 'np', { type: 'NodePort', clusterIP: '10.96.0.2', externalTrafficPolicy: 'Local', healthCheckNodePort: 31000, ports: [{ port: 80, nodePort: 30001 }] }),
    ).value[0]!;
    expect(np).toMatchObject({ externalPolicyLocal: true, healthCheckNodePort: 0 });
    const cip = normalizeService(service('ns', 'c', { clusterIP: '10.96.0.3', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] })).value[0]!;
    expect(cip.externalPolicyLocal).toBe(false);
  });
});

describe('normalizeEndpointSlice', () => {
  it('v1: conditions default as upstream, local by nodeName, first address only, bad addresses reported', () => {
    const s = slice('ns', 'svc', 'svc-1', [{ name: 'http', port: 8080 }], [{ ip: '10.0.0.1', node: 'me' }, { ip: '10.0.0.2', node: 'other', ready: false, serving: true, terminating: true }]);
    s.endpoints.push({ addresses: ['not-an-ip'] });
    const n = normalizeEndpointSlice(s, 'me');
    expect(n.problems).toEqual(['invalid endpoint address "not-an-ip"']);
    expect(n.value.service).toBe('ns/svc');
    expect(n.value.ports.get('http/TCP')).toEqual([
      { ip: '10.0.0.1', port: 8080, endpoint: '10.0.0.1:8080', isLocal: true, ready: true, serving: true, terminating: false, zoneHints: undefined },
      { ip: '10.0.0.2', port: 8080, endpoint: '10.0.0.2:8080', isLocal: false, ready: false, serving: true, terminating: true, zoneHints: undefined },
    ]);
  });

  it('v1beta1: topology gives the node, serving follows ready, terminating false', () => {
    const s: EndpointSliceV1beta1 = {
      apiVersion: 'discovery.k8s.io/v1beta1',
      metadata: { namespace: 'ns', name: 'svc-b', labels: { 'kubernetes.io/service-name': 'svc' } },
      addressType: 'IPv4',
      ports: [{ port: 80 }],
      endpoints: [
        { addresses: ['10.0.0.1'], topology: { 'kubernetes.io/hostname': 'me', 'topology.kubernetes.io/zone': 'z1' } },
        { addresses: ['10.0.0.2'], conditions: { ready: false }, topology: { 'kubernetes.io/hostname': 'other' } },
      ],
    };
    const n = normalizeEndpointSlice(s, 'me');
    expect(n.problems).toEqual([]);
    expect(n.value.ports.get('/TCP')?.map((e) => [e.ip, e.isLocal, e.ready, e.serving, e.terminating])).toEqual([
      ['10.0.0.1', true, true, true, false],
      ['10.0.0.2', false, false, false, false],
    ]);
  });

  it('ignores IPv6 and FQDN slices, reports a slice without service label and ports without numbers', () => {
    const v6 = slice('ns', 'svc', 's6', [{ port: 80 }], [{ ip: 'fd00::1' }]);
    v6.addressType = 'IPv6';
    expect(normalizeEndpointSlice(v6, 'me').value.ports.size).toBe(0);
    const nolabel = slice('ns', 'svc', 'x', [{ port: 80 }], [{ ip: '10.0.0.1' }]);
    nolabel.metadata!.labels = {};
    expect(normalizeEndpointSlice(nolabel, 'me').problems).toEqual(['missing label kubernetes.io/service-name']);
    const noport = slice('ns', 'svc', 'y', [{ name: 'a', port: 80 }], [{ ip: '10.0.0.1' }]);
    delete noport.ports![0]!.port;
    expect(normalizeEndpointSlice(noport, 'me').problems).toEqual(['port "a": port undefined invalid']);
  });
});

describe('ChangeSet', () => {
  it('commit clears only marks up to the snapshot generation', () => {
    let t = 100;
    const c = new ChangeSet(() => t);
    c.mark('a');
    c.mark('b');
    const snap = c.peek();
    t = 200;
    c.mark('b'); // changed again while the sync ran
    c.mark('c');
    c.commit(snap.generation);
    expect([...c.peek().services].sort()).toEqual(['b', 'c']);
    expect(c.oldestPendingAt()).toBe(100); // b has been pending since its first mark
  });
});

describe('trackers', () => {
  const mk = () => {
    const changes = new ChangeSet();
    return {
      changes,
      svcs: new ServiceChangeTracker({ changes, log: silentLogger }),
      eps: new EndpointsChangeTracker({ nodeName: 'me', changes, log: silentLogger }),
    };
  };

  it('marks a Service only when its proxy view changes', () => {
    const { changes, svcs } = mk();
    const s = service('ns', 'a', { clusterIP: '10.96.0.1', ports: [{ port: 80 }] });
    expect(svcs.onServiceAdd(s)).toBe(true);
    changes.commit(changes.peek().generation);
    const relabelled = { ...s, metadata: { ...s.metadata, labels: { x: 'y' }, resourceVersion: '2' } };
    expect(svcs.onServiceUpdate(s, relabelled)).toBe(false);
    expect(changes.size).toBe(0);
    expect(svcs.onServiceDelete(relabelled)).toBe(true);
    expect(svcs.get('ns/a')).toEqual([]);
    // A headless Service is never tracked; adding and deleting it is not a change.
    expect(svcs.onServiceAdd(service('ns', 'h', { clusterIP: 'None', ports: [{ port: 80 }] }))).toBe(false);
  });

  it('merges slices of one Service, deduplicating endpoints and preferring a local copy', () => {
    const { eps } = mk();
    eps.onEndpointSliceAdd(slice('ns', 'svc', 's1', [{ name: 'p', port: 80 }], [{ ip: '10.0.0.2' }, { ip: '10.0.0.1' }]));
    eps.onEndpointSliceAdd(slice('ns', 'svc', 's2', [{ name: 'p', port: 80 }], [{ ip: '10.0.0.1', node: 'me' }, { ip: '10.0.0.3' }]));
    expect(eps.get('ns/svc').get('p/TCP')?.map((e) => `${e.endpoint}${e.isLocal ? ' local' : ''}`)).toEqual(['10.0.0.1:80 local', '10.0.0.2:80', '10.0.0.3:80']);
    expect(eps.totalEndpoints).toBe(3);
    eps.onEndpointSliceDelete(slice('ns', 'svc', 's2', [], []));
    expect(eps.get('ns/svc').get('p/TCP')?.map((e) => e.endpoint)).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
    expect(eps.totalEndpoints).toBe(2);
  });

  it('uses core Endpoints only while a Service has no slice', () => {
    const { eps } = mk();
    eps.onEndpointsAdd(endpointsObject('ns', 'svc', [{ port: 80 }], [{ ip: '10.0.0.9', node: 'me' }], [{ ip: '10.0.0.8' }]));
    expect(eps.get('ns/svc').get('/TCP')?.map((e) => [e.endpoint, e.ready, e.isLocal])).toEqual([
      ['10.0.0.8:80', false, false],
      ['10.0.0.9:80', true, true],
    ]);
    eps.onEndpointSliceAdd(slice('ns', 'svc', 's1', [{ port: 80 }], [{ ip: '10.0.0.1' }]));
    expect(eps.get('ns/svc').get('/TCP')?.map((e) => e.endpoint)).toEqual(['10.0.0.1:80']);
    eps.onEndpointSliceDelete(slice('ns', 'svc', 's1', [], []));
    expect(eps.get('ns/svc').get('/TCP')?.map((e) => e.endpoint)).toEqual(['10.0.0.8:80', '10.0.0.9:80']);
  });

  it('an identical slice update is not a change', () => {
    const { changes, eps } = mk();
    const s = slice('ns', 'svc', 's1', [{ port: 80 }], [{ ip: '10.0.0.1' }]);
    eps.onEndpointSliceAdd(s);
    changes.commit(changes.peek().generation);
    expect(eps.onEndpointSliceUpdate(s, { ...s, metadata: { ...s.metadata, resourceVersion: '9' } })).toBe(false);
  });
});
