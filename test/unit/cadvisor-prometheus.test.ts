// The Prometheus endpoints parsed by a strict text-exposition-format (0.0.4) parser (fixtures/exposition-parser.ts,
// self-checked below), then names, types, HELP and labels compared with cAdvisor's and the kubelet's.
import { describe, expect, it } from 'vitest';
import { createCadvisorRegistry, createProbeMetrics, createResourceRegistry, createBerthMetrics } from '../../src/cadvisor/prometheus.ts';
import { fakeProvider, snapshot } from './fixtures/cadvisor-snapshot.ts';
import { parseExposition } from './fixtures/exposition-parser.ts';

const CADVISOR_BASE = ['container', 'id', 'image', 'name', 'namespace', 'pod'];

describe('exposition parser (self-check)', () => {
  it('rejects bad syntax', () => {
    expect(() => parseExposition('# TYPE a gauge\na{b="x} 1\n')).toThrow();
    expect(() => parseExposition('# TYPE a gauge\na{b="\\q"} 1\n')).toThrow();
    expect(() => parseExposition('a 1\n')).toThrow(/before its TYPE/);
    expect(() => parseExposition('# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n')).toThrow(/contiguous/);
    expect(() => parseExposition('# TYPE 1a gauge\n')).toThrow();
    expect(parseExposition('# HELP a x\\ny\n# TYPE a gauge\na{b="q\\"\\\\\\n"} 1.5e3\n').get('a')).toEqual({ name: 'a', help: 'x\ny', type: 'gauge', samples: [{ name: 'a', labels: { b: 'q"\\\n' }, value: 1500 }] });
  });
});

describe('/metrics/cadvisor', async () => {
  const text = await createCadvisorRegistry(fakeProvider(snapshot({ image: 'reg.example/odd"image\\name\nx:1' })), { imageFsDevice: '/dev/vda1' }).metrics();
  const fams = parseExposition(text);

  it('uses cAdvisor names, types and HELP', () => {
    const want: [string, string, string][] = [
      ['container_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed in seconds.'],
      ['container_cpu_user_seconds_total', 'counter', 'Cumulative user cpu time consumed in seconds.'],
      ['container_cpu_cfs_throttled_periods_total', 'counter', 'Number of throttled period intervals.'],
      ['container_memory_working_set_bytes', 'gauge', 'Current working set in bytes.'],
      ['container_memory_rss', 'gauge', 'Size of RSS in bytes.'],
      ['container_memory_usage_bytes', 'gauge', 'Current memory usage in bytes, including all memory regardless of when it was accessed'],
      ['container_network_receive_bytes_total', 'counter', 'Cumulative count of bytes received'],
      ['container_network_transmit_bytes_total', 'counter', 'Cumulative count of bytes transmitted'],
      ['container_fs_usage_bytes', 'gauge', 'Number of bytes that are consumed by the container on this filesystem.'],
      ['container_spec_memory_limit_bytes', 'gauge', 'Memory limit for the container.'],
      ['container_start_time_seconds', 'gauge', 'Start time of the container since unix epoch in seconds.'],
      ['container_threads', 'gauge', 'Number of threads running inside the container'],
      ['machine_cpu_cores', 'gauge', 'Number of logical CPU cores.'],
      ['machine_memory_bytes', 'gauge', 'Amount of memory installed on the machine.'],
      ['container_scrape_error', 'gauge', '1 if there was an error while getting container metrics, 0 otherwise'],
    ];
    for (const [name, type, help] of want) {
      const f = fams.get(name);
      expect(f, name).toBeDefined();
      expect([f!.type, f!.help], name).toEqual([type, help]);
    }
  });

  it('labels every container sample with container, id, image, name, namespace, pod (+ the metric extras)', () => {
    const cpuF = fams.get('container_cpu_usage_seconds_total')!;
    for (const s of cpuF.samples) expect(Object.keys(s.labels).sort()).toEqual([...CADVISOR_BASE, 'cpu'].sort());
    const app = cpuF.samples.find((s) => s.labels.container === 'app')!;
    expect(app.labels).toEqual({
      container: 'app',
      cpu: 'total',
      id: '/kubepods/burstable/poduid-1/aaaaaaaaaaaaaaaa',
      image: 'reg.example/odd"image\\name\nx:1', // escaped on the wire, intact after parsing
      name: 'k8s_app_web_default_uid-1_0',
      namespace: 'default',
      pod: 'web',
    });
    expect(app.value).toBe(3);
    // The root, three system containers, the pod cgroup, the sandbox and the app container.
    expect(cpuF.samples.map((s) => s.labels.id).sort()).toEqual(['/', '/kubelet', '/kubepods/burstable/poduid-1', '/kubepods/burstable/poduid-1/aaaaaaaaaaaaaaaa', '/kubepods/burstable/poduid-1/pppppppppppppppp', '/pods', '/runtime'].sort());
    const rx = fams.get('container_network_receive_bytes_total')!.samples.filter((s) => s.labels.pod === 'web');
    expect(rx.map((s) => [s.labels.container, s.labels.interface, s.value])).toEqual([
      ['POD', 'eth0', 100],
      ['POD', 'eth1', 1],
    ]);
    const fsU = fams.get('container_fs_usage_bytes')!.samples;
    expect(fsU).toEqual([expect.objectContaining({ value: 4096, labels: expect.objectContaining({ container: 'app', device: '/dev/vda1' }) })]);
    expect(fams.get('container_memory_working_set_bytes')!.samples.find((s) => s.labels.container === 'app')!.value).toBe(64 * 2 ** 20);
    expect(fams.get('container_scrape_error')!.samples[0]!.value).toBe(0);
  });

  it('reports a scrape error and no container samples before the first housekeeping', async () => {
    const f = parseExposition(await createCadvisorRegistry(fakeProvider(undefined)).metrics());
    expect(f.get('container_scrape_error')!.samples[0]!.value).toBe(1);
    expect(f.get('container_cpu_usage_seconds_total')!.samples).toEqual([]);
  });
});

describe('/metrics/resource', async () => {
  const fams = parseExposition(await createResourceRegistry(fakeProvider(snapshot())).metrics());
  it('has what metrics-server reads, with [ALPHA] HELP and upstream labels', () => {
    expect(fams.get('node_cpu_usage_seconds_total')).toMatchObject({ type: 'counter', help: '[ALPHA] Cumulative cpu time consumed by the node in core-seconds', samples: [{ labels: {}, value: 900 }] });
    expect(fams.get('node_memory_working_set_bytes')!.samples[0]!.value).toBe(2 * 2 ** 30);
    expect(fams.get('container_cpu_usage_seconds_total')!.samples).toEqual([{ name: 'container_cpu_usage_seconds_total', labels: { container: 'app', pod: 'web', namespace: 'default' }, value: 3 }]);
    expect(fams.get('container_memory_working_set_bytes')!.samples[0]!.labels).toEqual({ container: 'app', pod: 'web', namespace: 'default' });
    expect(fams.get('pod_cpu_usage_seconds_total')!.samples).toEqual([{ name: 'pod_cpu_usage_seconds_total', labels: { pod: 'web', namespace: 'default' }, value: 6 }]);
    expect(fams.get('pod_memory_working_set_bytes')!.samples[0]!.value).toBe(128 * 2 ** 20);
    expect(fams.get('scrape_error')!.samples[0]!.value).toBe(0);
  });
});

describe('/metrics/probes and /metrics', () => {
  it('counts probe runs by type and result', async () => {
    const p = createProbeMetrics();
    const run = { probeType: 'readiness', container: 'app', pod: 'web', namespace: 'default', podUid: 'u1' };
    p.record({ ...run, result: 'successful' });
    p.record({ ...run, result: 'successful' });
    p.record({ ...run, probeType: 'liveness', result: 'failed' });
    const f = parseExposition(await p.registry.metrics()).get('prober_probe_total')!;
    expect(f.type).toBe('counter');
    expect(f.samples).toContainEqual({ name: 'prober_probe_total', labels: { probe_type: 'Readiness', result: 'successful', container: 'app', pod: 'web', namespace: 'default', pod_uid: 'u1' }, value: 2 });
    expect(f.samples).toContainEqual(expect.objectContaining({ labels: expect.objectContaining({ probe_type: 'Liveness', result: 'failed' }), value: 1 }));
  });

  it("serves berth's own process metrics and loop histograms", async () => {
    const m = createBerthMetrics();
    m.plegRelistDuration.observe(0.02);
    const f = parseExposition(await m.registry.metrics());
    expect(f.get('process_resident_memory_bytes')?.type).toBe('gauge');
    expect(f.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(f.get('kubelet_pleg_relist_duration_seconds')?.type).toBe('histogram');
    expect(f.get('kubelet_pleg_relist_duration_seconds')!.samples.find((s) => s.name.endsWith('_count'))!.value).toBe(1);
  });
});
