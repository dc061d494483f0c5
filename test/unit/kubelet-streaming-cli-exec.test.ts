// `berth exec`: its kubectl-like argument handling and the choice of the container to exec into.
import { describe, expect, it } from 'vitest';
import { computeExecTarget, splitExecArgs } from '../../src/cli/exec.ts';

describe('splitExecArgs', () => {
  it.each([
    [['-it', 'web', '--', 'sh'], { stdin: true, tty: true, namespace: 'default', command: ['sh'] }, ['web']],
    [['-i', '-n', 'prod', 'web', '-c', 'app', '--', 'cat', '-n'], { stdin: true, tty: false, namespace: 'prod', container: 'app', command: ['cat', '-n'] }, ['web']],
    [['--container=app', '--docker-endpoint', 'unix:///x.sock', 'web', '--', 'ls'], { stdin: false, tty: false, namespace: 'default', container: 'app', command: ['ls'] }, ['--docker-endpoint', 'unix:///x.sock', 'web']],
    [['web'], { stdin: false, tty: false, namespace: 'default', command: [] }, ['web']],
  ])('%j', (args, exec, others) => {
    expect(splitExecArgs(args)).toEqual({ exec, others });
  });
});

describe('computeExecTarget', () => {
  const c = (id: string, pod: string, name: string, state = 'CONTAINER_RUNNING') => ({
    id,
    state,
    labels: { 'io.kubernetes.pod.name': pod, 'io.kubernetes.container.name': name },
  });
  const listed = [c('a1', 'web', 'app'), c('a0', 'web', 'app', 'CONTAINER_EXITED'), c('s1', 'static-node1', 'only'), c('b1', 'two', 'x'), c('b2', 'two', 'y')];

  it('picks the running container of the pod; the only container needs no -c', () => {
    expect(computeExecTarget(listed, 'web', 'node1', undefined)).toEqual({ id: 'a1', pod: 'web', container: 'app' });
  });
  it('finds a static pod by its manifest name', () => {
    expect(computeExecTarget(listed, 'static', 'node1', undefined)).toEqual({ id: 's1', pod: 'static-node1', container: 'only' });
  });
  it('answers as kubectl does for a missing pod, an ambiguous container and a container that is not running', () => {
    expect(computeExecTarget(listed, 'nope', 'node1', undefined)).toEqual({ error: 'pods "nope" not found' });
    expect(computeExecTarget(listed, 'two', 'node1', undefined)).toEqual({ error: 'a container name must be specified for pod two, choose one of: [x y]' });
    expect(computeExecTarget([c('z', 'p', 'dead', 'CONTAINER_EXITED')], 'p', 'n', 'dead')).toEqual({ error: 'container not found ("dead")' });
  });
});
