// The gateway's entry point (weir/gateway). Separate from weir's main entry because it loads the
// uWebSockets.js native addon, which workers never need. The client SDK has its own entry (weir/client).
export { createGateway } from './server.ts'
export { generateCommandModule } from './codegen.ts'
export { describeCode, gatewayError, isWireErrorCode } from './errors.ts'

export type { Gateway } from './server.ts'
export type { DeadlineRegistrar, GatewayOptions, RateLimitOptions } from './options.ts'
export type { GatewayBlobOptions, SignedBlobRef } from './blob-links.ts'
export type { AuthOptions } from './auth.ts'
export type { CodegenOptions } from './codegen.ts'
export type { WireErrorCode } from './errors.ts'
