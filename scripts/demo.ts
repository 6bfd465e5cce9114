// `npm run demo`: starts Kafka, Redis, a worker running the example service, the gateway and the demo page.
// The gateway and the example service are not built yet, so this says so instead of pretending.
process.stderr.write(
  [
    '[weir] the demo is not available yet: it needs the WebSocket gateway and the example service,',
    '[weir] which are still being built. `npm test` runs the test suite against a real broker today.',
    '',
  ].join('\n'),
)
process.exit(2)
