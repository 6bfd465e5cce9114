// The demo page's script: the client SDK (gateway/client.ts) in a browser, without a bundler. The demo server
// (scripts/demo/page-server.ts) serves this file and the SDK's own files with their types stripped, and mints the token.
//
// Besides using the SDK, it taps the raw frames of each WebSocket (acks, the `resumed` frame) to show what happens
// on the wire, and can take the connection offline to show that results produced meanwhile are replayed on resume.
import { connect } from '../../../gateway/client.ts'
import type { EventFrame, FrameOffset, GatewayClient, ResultFrame, TimeoutFrame } from '../../../gateway/client.ts'
import type { WeirError } from '../../../core/errors.ts'
import { startFaultsPanel } from './faults-panel.ts'

interface DemoConfig {
  /** Port and path of the gateway; the host is the one this page came from. */
  gatewayPort: number
  gatewayPath: string
  topicAlias: string
  commands: Array<{ path: string; description?: string; defaultTtlMs?: number }>
}

type RowStatus = 'sent' | 'acked' | 'ok' | 'timeout' | 'error'

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`#${id} is missing from the page`)
  return element as T
}
const input = (id: string) => byId<HTMLInputElement>(id)
const time = () => new Date().toLocaleTimeString(undefined, { hour12: false })
const short = (value: unknown) => JSON.stringify(value)

function log(message: string): void {
  const item = document.createElement('li')
  item.textContent = `${time()} ${message}`
  byId('log').prepend(item)
}

// --- The wire: every WebSocket the SDK opens goes through here -------------------------------------------

let currentSocket: WebSocket | undefined
let offline = false
const offlineSockets = new Set<OfflineSocket>()
let welcomes = 0
/** Between a reconnect's welcome and its `resumed` frame, result frames are replays from Kafka. */
let replaying = false
const replayedRequestIds = new Set<string>()

/** Stands in for a socket while the page is "offline": never opens; fails when the page goes online, so the SDK retries at once. */
class OfflineSocket {
  readyState = 0
  binaryType = 'arraybuffer'
  onmessage: ((event: MessageEvent) => void) | null = null
  onclose: ((event: CloseEvent) => void) | null = null
  constructor() {
    offlineSockets.add(this)
  }
  fail(): void {
    offlineSockets.delete(this)
    this.readyState = 3
    this.onclose?.(new CloseEvent('close', { code: 1006, reason: 'offline (demo)' }))
  }
  send(): void {}
  close(): void {}
}

function tap(data: unknown): void {
  if (typeof data !== 'string') return
  let frame: { type?: string; requestId?: string; replayed?: number; sessionId?: string }
  try {
    frame = JSON.parse(data) as typeof frame
  } catch {
    return
  }
  switch (frame.type) {
    case 'welcome':
      welcomes++
      replaying = welcomes > 1
      byId('session').textContent = frame.sessionId ?? '-'
      log(`welcome: session ${frame.sessionId}${welcomes > 1 ? ' (the same session after a reconnect)' : ''}`)
      break
    case 'resumed': {
      replaying = false
      const resume = byId('resume')
      resume.dataset.replayed = String(frame.replayed ?? 0)
      resume.textContent = `${time()}: ${frame.replayed ?? 0} result(s) replayed from Kafka`
      log(`resumed: ${frame.replayed ?? 0} result(s) replayed, now live`)
      break
    }
    case 'subscribed':
      document.body.dataset.subscribed = 'true'
      log(`subscribed to events (${frame.replayed ?? 0} replayed)`)
      break
    case 'ack':
      if (frame.requestId !== undefined) setStatus(frame.requestId, 'acked', 'written to Kafka, waiting for the outcome')
      break
    case 'result':
    case 'timeout':
      if (replaying && frame.requestId !== undefined) replayedRequestIds.add(frame.requestId)
      break
  }
}

// The SDK takes a WebSocket constructor: this one records the socket (to drop it) and stays offline on demand.
function DemoWebSocket(url: string, protocols: string[]): WebSocket | OfflineSocket {
  if (offline) return new OfflineSocket()
  const ws = new WebSocket(url, protocols)
  ws.addEventListener('message', (event) => tap(event.data))
  currentSocket = ws
  return ws
}
DemoWebSocket.OPEN = WebSocket.OPEN
DemoWebSocket.CONNECTING = WebSocket.CONNECTING
DemoWebSocket.CLOSING = WebSocket.CLOSING
DemoWebSocket.CLOSED = WebSocket.CLOSED

// --- Commands and outcomes ------------------------------------------------------------------------------

function newRequestId(): string {
  // crypto.randomUUID exists only in secure contexts (https, localhost): this works on plain http too.
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
}

function row(requestId: string): HTMLTableRowElement | null {
  return document.querySelector<HTMLTableRowElement>(`tr[data-request-id="${requestId}"]`)
}

function setStatus(requestId: string, status: RowStatus, outcome: string, note = ''): void {
  const tr = row(requestId)
  if (tr === null) return
  // An ack can arrive after a fast outcome was shown: never go back.
  if (status === 'acked' && tr.dataset.status !== 'sent') return
  tr.dataset.status = status
  ;(tr.querySelector('td.status') as HTMLElement).textContent = status
  const cell = tr.querySelector('td.outcome') as HTMLElement
  cell.textContent = outcome
  if (note !== '') {
    const span = document.createElement('div')
    span.className = 'note'
    span.textContent = note
    cell.append(span)
  }
}

function addRow(requestId: string, path: string, payload: unknown): void {
  const tr = document.createElement('tr')
  tr.dataset.requestId = requestId
  tr.dataset.path = path
  tr.dataset.status = 'sent'
  for (const [cls, text] of [
    ['time', time()],
    ['path mono', path],
    ['payload mono', short(payload)],
    ['status', 'sent'],
    ['outcome mono', ''],
  ] as const) {
    const td = document.createElement('td')
    td.className = cls
    td.textContent = text
    tr.append(td)
  }
  byId('commands').prepend(tr)
}

function outcomeNote(frame: ResultFrame | TimeoutFrame): string {
  const where = `${frame.topic}[${frame.partition}]@${frame.offset}`
  return replayedRequestIds.has(frame.requestId) ? `replayed after reconnect from ${where}` : `from ${where}`
}

let client: GatewayClient | undefined

async function send(path: string, payload: unknown, ttlMs?: number): Promise<void> {
  if (client === undefined) return
  const requestId = newRequestId()
  addRow(requestId, path, payload)
  try {
    const result = await client.send(path, payload, { requestId, ...(ttlMs === undefined ? {} : { ttlMs }) })
    setStatus(requestId, 'ok', short(result.payload), outcomeNote(result))
    if (path.endsWith('/place')) input('cancel-order-id').value = (payload as { orderId: string }).orderId
  } catch (error) {
    const e = error as WeirError
    const frame = e.details?.result as ResultFrame | TimeoutFrame | undefined
    const violations = e.details?.violations as string[] | undefined
    if (e.code === 'WEIR_ERR_DEADLINE_EXCEEDED') {
      setStatus(requestId, 'timeout', `${e.code}: no result before the deadline`, frame === undefined ? '' : outcomeNote(frame))
    } else {
      setStatus(requestId, 'error', `${e.code}: ${e.message}${violations === undefined ? '' : ` (${violations.join('; ')})`}`, frame === undefined ? '' : outcomeNote(frame))
    }
  }
}

let orderCounter = 0
function nextOrderId(): string {
  orderCounter++
  return `o-${Date.now().toString(36).slice(-4)}${orderCounter}`
}

function numberOrUndefined(id: string): number | undefined {
  const raw = input(id).value.trim()
  return raw === '' ? undefined : Number(raw)
}

function addEvent(event: EventFrame): void {
  trackSaga(event)
  const item = document.createElement('li')
  item.dataset.alias = event.alias
  item.textContent = `${time()} ${event.alias} ${short(event.payload)}  (${event.topic}[${event.partition}]@${event.offset})`
  byId('events').prepend(item)
}

// --- Sagas (examples/saga): the order saga's events arrive on the orders events stream --------------------

/** One row per saga: where it stands, from its saga-* events (started, step-completed, ..., completed or compensated). */
function trackSaga(event: EventFrame): void {
  const payload = event.payload as { sagaId?: string; step?: string; status?: string; failure?: { step: string; message: string } } | null
  if (!event.alias.startsWith('saga-') || typeof payload?.sagaId !== 'string') return
  let row = document.querySelector<HTMLTableRowElement>(`#sagas tr[data-saga-id="${CSS.escape(payload.sagaId)}"]`)
  if (row === null) {
    row = document.createElement('tr')
    row.dataset.sagaId = payload.sagaId
    for (const name of ['id', 'status', 'steps']) {
      const cell = document.createElement('td')
      cell.className = name
      row.append(cell)
    }
    ;(row.querySelector('td.id') as HTMLElement).textContent = payload.sagaId
    byId('sagas').prepend(row)
  }
  row.dataset.status = payload.status ?? ''
  ;(row.querySelector('td.status') as HTMLElement).textContent = payload.status ?? ''
  const step = event.alias === 'saga-step-completed' ? `${payload.step} done` : event.alias === 'saga-step-compensated' ? `${payload.step} undone` : event.alias === 'saga-compensating' ? `${payload.failure?.step} failed: ${payload.failure?.message}` : event.alias.slice('saga-'.length)
  const steps = row.querySelector('td.steps') as HTMLElement
  steps.textContent = steps.textContent === '' ? step : `${steps.textContent} → ${step}`
}

function startSaga(sku: string, qty: number): void {
  void send('orders/orders/place', { orderId: nextOrderId(), sku, qty })
}

// --- Start ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const config = (await (await fetch('/config.json')).json()) as DemoConfig
  for (const command of config.commands) {
    const item = document.createElement('li')
    item.textContent = `${command.path}${command.defaultTtlMs === undefined ? '' : ` (TTL ${command.defaultTtlMs} ms)`}: ${command.description ?? ''}`
    byId('catalog').append(item)
  }
  input('place-order-id').value = nextOrderId()
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  const stored = (key: string) => sessionStorage.getItem(key) ?? undefined
  const offsets = JSON.parse(stored('weir.offsets') ?? '[]') as FrameOffset[]
  const nonce = stored('weir.nonce')
  client = await connect({
    url: () => `${scheme}://${location.hostname}:${config.gatewayPort}${config.gatewayPath}`,
    token: async () => (await (await fetch('/token', { method: 'POST' })).json()).token as string,
    WebSocket: DemoWebSocket as unknown as typeof WebSocket,
    reconnect: { initialDelayMs: 100, maxDelayMs: 2000 },
    offsets,
    ...(nonce === undefined ? {} : { sessionNonce: nonce }),
    onStateChange(state) {
      const badge = byId('state')
      badge.dataset.state = state
      badge.textContent = state
      log(`connection ${state}`)
    },
    onResult(frame) {
      log(`result of a command sent before this page loaded: ${frame.requestId} ${frame.status} ${short(frame.payload)}`)
    },
    onGap: (gap) => log(`gap: ${gap.topic}[${gap.partition}] ${gap.from}..${gap.to} is gone (retention)`),
    onError: (error) => log(`error: ${error.code} ${error.message}`),
  })
  const connected = client
  byId('state').dataset.state = connected.state
  byId('state').textContent = connected.state
  connected.subscribe(config.topicAlias, addEvent)
  addEventListener('pagehide', () => {
    if (connected.sessionNonce !== undefined) sessionStorage.setItem('weir.nonce', connected.sessionNonce)
    sessionStorage.setItem('weir.offsets', JSON.stringify(connected.offsets()))
  })

  byId('place').addEventListener('click', () => {
    const orderId = input('place-order-id').value.trim()
    void send('orders/orders/place', { orderId, sku: input('place-sku').value.trim(), qty: Number(input('place-qty').value) }, numberOrUndefined('place-ttl'))
    input('place-order-id').value = nextOrderId()
  })
  byId('saga-ok').addEventListener('click', () => startSaga('apple', 2))
  byId('saga-stock').addEventListener('click', () => startSaga('apple', 20))
  byId('saga-piano').addEventListener('click', () => startSaga('piano', 1))
  byId('cancel').addEventListener('click', () => void send('orders/orders/cancel', { orderId: input('cancel-order-id').value.trim() }))
  byId('get').addEventListener('click', () => void send('orders/orders/get', { orderId: input('cancel-order-id').value.trim() }))
  byId('slow').addEventListener('click', () => void send('orders/orders/slow', { ms: Number(input('slow-ms').value) }, numberOrUndefined('slow-ttl')))
  byId('custom-send').addEventListener('click', () => {
    let payload: unknown
    try {
      payload = JSON.parse(byId<HTMLTextAreaElement>('custom-payload').value)
    } catch (error) {
      log(`the payload is not JSON: ${(error as Error).message}`)
      return
    }
    void send(input('custom-path').value.trim(), payload, numberOrUndefined('custom-ttl'))
  })
  const offlineButton = byId<HTMLButtonElement>('offline')
  offlineButton.addEventListener('click', () => {
    offline = !offline
    offlineButton.textContent = offline ? 'Go online' : 'Go offline'
    document.body.dataset.offline = String(offline)
    if (offline) {
      log('going offline: the connection drops and stays down until you go online')
      currentSocket?.close(4000, 'dropped by the demo page')
    } else {
      log('going online: the client reconnects and resumes from its offsets')
      for (const socket of [...offlineSockets]) socket.fail()
    }
  })
  await startFaultsPanel(byId('faults'), log)
  document.body.dataset.ready = 'true'
}

main().catch((error: unknown) => {
  const e = error as WeirError
  log(`cannot start: ${e.code ?? ''} ${e.message ?? String(error)}`)
  document.body.dataset.failed = String(e.message ?? error)
})
