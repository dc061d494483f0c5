// `--proxy-mode none`: the same event surface, doing nothing, so the composition root wires informers one way.
import type { ProxyEventHandler } from './frontend.ts';

export const disabledProxy: ProxyEventHandler & { healthy(): boolean } = {
  onServiceAdd: () => {},
  onServiceUpdate: () => {},
  onServiceDelete: () => {},
  onServicesSynced: () => {},
  onEndpointSliceAdd: () => {},
  onEndpointSliceUpdate: () => {},
  onEndpointSliceDelete: () => {},
  onEndpointSlicesSynced: () => {},
  onEndpointsAdd: () => {},
  onEndpointsUpdate: () => {},
  onEndpointsDelete: () => {},
  onEndpointsSynced: () => {},
  onNodeUpdate: () => {},
  healthy: () => true,
};
