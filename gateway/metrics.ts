// Prometheus metrics of one gateway instance, in its own registry (the service adds default process metrics).
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export interface GatewayMetrics {
  readonly registry: Registry
  readonly connections: Gauge
  readonly connectionsOpened: Counter
  readonly upgradesRejected: Counter<'code'>
  readonly framesReceived: Counter<'type'>
  readonly frameErrors: Counter<'code'>
  readonly commands: Counter<'outcome'>
  readonly produceSeconds: Histogram
  readonly resultsDelivered: Counter
  readonly eventsPublished: Counter
  readonly replayedRecords: Counter
  readonly gaps: Counter
  readonly backpressureCloses: Counter
  readonly recordsRejected: Counter
  readonly liveLag: Gauge<'topic'>
}

export function createGatewayMetrics(instanceId: string, lag: () => Map<string, bigint>, registry = new Registry()): GatewayMetrics {
  registry.setDefaultLabels({ gateway_instance: instanceId })
  const registers = [registry]
  return {
    registry,
    connections: new Gauge({ name: 'weir_gateway_connections', help: 'Open WebSocket connections', registers }),
    connectionsOpened: new Counter({ name: 'weir_gateway_connections_opened_total', help: 'WebSocket connections accepted', registers }),
    upgradesRejected: new Counter({ name: 'weir_gateway_upgrades_rejected_total', help: 'Upgrade requests refused, by error code', labelNames: ['code'], registers }),
    framesReceived: new Counter({ name: 'weir_gateway_frames_received_total', help: 'Valid client frames, by type', labelNames: ['type'], registers }),
    frameErrors: new Counter({ name: 'weir_gateway_frame_errors_total', help: 'Error frames sent, by code', labelNames: ['code'], registers }),
    commands: new Counter({ name: 'weir_gateway_commands_total', help: 'Commands by outcome (accepted, rejected, failed)', labelNames: ['outcome'], registers }),
    produceSeconds: new Histogram({
      name: 'weir_gateway_command_produce_seconds',
      help: 'Time to produce a command to Kafka (acks=all)',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    resultsDelivered: new Counter({ name: 'weir_gateway_results_published_total', help: 'Results published to a session with a socket on this instance', registers }),
    eventsPublished: new Counter({ name: 'weir_gateway_events_published_total', help: 'Events published to broadcast subscribers', registers }),
    replayedRecords: new Counter({ name: 'weir_gateway_replayed_records_total', help: 'Results and events replayed to resuming sockets', registers }),
    gaps: new Counter({ name: 'weir_gateway_gaps_total', help: 'Gap frames sent (offsets older than retention)', registers }),
    backpressureCloses: new Counter({ name: 'weir_gateway_backpressure_closes_total', help: 'Slow consumers disconnected at the backpressure limit', registers }),
    recordsRejected: new Counter({ name: 'weir_gateway_records_rejected_total', help: 'Result/event records that are not valid envelopes', registers }),
    liveLag: new Gauge({
      name: 'weir_gateway_live_lag_records',
      help: 'Records between the live read position and the high watermark, per topic',
      labelNames: ['topic'],
      registers,
      collect() {
        for (const [topic, records] of lag()) this.set({ topic }, Number(records))
      },
    }),
  }
}
