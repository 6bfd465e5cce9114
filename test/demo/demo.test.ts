// The demo end to end in a real browser: the demo's worker and gateway processes on the shared broker, its page
// in headless Chromium (Debian's, provided by scripts/infra/chromium.ts; `npm test` sets WEIR_CHROMIUM). A person's
// clicks: a command and its result, an event, a schema violation, a timeout, and an offline page whose missed
// result is replayed on resume.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'

import { decodeEnvelope } from '../../envelope/codec.ts'
import { startTestDemo } from '../helpers/demo.ts'
import { closeAdmin, consume } from '../helpers/kafka.ts'

const executablePath = process.env.WEIR_CHROMIUM

after(closeAdmin)

test(
  'the demo page sends commands, shows results, events, a timeout, and a result replayed after a reconnect',
  { skip: executablePath ? false : 'WEIR_CHROMIUM is not set: `npm test` provides Chromium; by hand, run it with WEIR_CHROMIUM=/usr/bin/chromium' },
  async (t) => {
    const demo = await startTestDemo(t, { name: 'demo', partitions: 2 })

    const browser: Browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    t.after(() => browser.close())
    const page: Page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`)
    })
    const explain = async () => `\npage problems: ${problems.join('\n') || 'none'}\nconnection log:\n${(await page.locator('#log').innerText().catch(() => '')).slice(0, 3000)}`
    const waitFor = async (selector: string, timeout = 20_000) => {
      try {
        await page.waitForSelector(selector, { timeout })
      } catch (error) {
        throw new Error(`${selector} did not appear within ${timeout} ms: ${(error as Error).message.split('\n')[0]}${await explain()}`, { cause: error })
      }
    }
    const row = (path: string, status: string) => `#commands tr[data-path="${path}"][data-status="${status}"]`

    await page.goto(demo.url)
    await waitFor('body[data-ready="true"][data-subscribed="true"]')
    assert.equal(await page.locator('#state').getAttribute('data-state'), 'open')

    // A command and its result; the event it emitted reaches the subscription.
    const orderId = await page.inputValue('#place-order-id')
    await page.fill('#place-sku', 'pear')
    await page.fill('#place-qty', '3')
    await page.click('#place')
    await waitFor(row('orders/orders/place', 'ok'))
    const placed = await page.locator(`${row('orders/orders/place', 'ok')} td.outcome`).innerText()
    assert.match(placed, new RegExp(`"orderId":"${orderId}".*"status":"placed"`, 's'))
    await waitFor(`#events li[data-alias="order-placed"]:has-text("${orderId}")`)

    // Cancel the same order (the page filled its id in): result and event.
    assert.equal(await page.inputValue('#cancel-order-id'), orderId)
    await page.click('#cancel')
    await waitFor(row('orders/orders/cancel', 'ok'))
    assert.match(await page.locator(`${row('orders/orders/cancel', 'ok')} td.outcome`).innerText(), /"status":"cancelled"/)
    await waitFor(`#events li[data-alias="order-cancelled"]:has-text("${orderId}")`)

    // The placed order started the order saga (examples/saga): the page shows it complete; a piano cannot be
    // shipped, so its saga releases the stock, then refunds the charge.
    await waitFor(`#sagas tr[data-saga-id="${orderId}"][data-status="completed"]`, 90_000)
    assert.match(await page.locator(`#sagas tr[data-saga-id="${orderId}"] td.steps`).innerText(), /started → payment done → inventory done → shipping done → completed/)
    await page.click('#saga-piano')
    await waitFor('#sagas tr[data-status="compensated"]', 90_000)
    assert.match(await page.locator('#sagas tr[data-status="compensated"] td.steps').innerText(), /shipping failed: cannot ship a piano → inventory undone → payment undone → compensated/)

    // A payload that breaks the schema is refused by the gateway, with every violation.
    await page.click('#custom-send')
    await waitFor(row('orders/orders/place', 'error'))
    const refused = await page.locator(`${row('orders/orders/place', 'error')} td.outcome`).innerText()
    assert.match(refused, /WEIR_ERR_SCHEMA_VIOLATION/)
    assert.match(refused, /orderId/)

    // The slow command outlives its 1 s TTL: the outcome is the timeout.
    await page.fill('#slow-ms', '2500')
    await page.fill('#slow-ttl', '1000')
    await page.click('#slow')
    await waitFor(row('orders/orders/slow', 'timeout'))
    assert.match(await page.locator(`${row('orders/orders/slow', 'timeout')} td.outcome`).innerText(), /WEIR_ERR_DEADLINE_EXCEEDED/)
    assert.equal(await page.locator(row('orders/orders/slow', 'ok')).count(), 0, 'never a timeout and a result')

    // A slow command with a long TTL, acked; then the page goes offline, and stays offline until its result is on
    // the results topic. On reconnect the gateway replays it from Kafka (before `resumed`), and send() resolves.
    await page.fill('#slow-ms', '1500')
    await page.fill('#slow-ttl', '30000')
    await page.click('#slow')
    await waitFor(row('orders/orders/slow', 'acked'))
    const requestId = await page.locator(row('orders/orders/slow', 'acked')).getAttribute('data-request-id')
    await page.click('#offline')
    await waitFor('#state[data-state="reconnecting"]', 5000)
    await consume(`${demo.prefix}.results`, { timeoutMs: 30_000, until: (record) => decodeEnvelope(record.value as Buffer).requestId === requestId })
    assert.equal(await page.locator(`#commands tr[data-request-id="${requestId}"]`).getAttribute('data-status'), 'acked', 'no result while offline')
    await page.click('#offline')
    await waitFor(row('orders/orders/slow', 'ok'), 20_000)
    const resumed = await page.locator(`${row('orders/orders/slow', 'ok')} td.outcome`).innerText()
    assert.match(resumed, /"sleptMs":1500/)
    assert.match(resumed, /replayed after reconnect/, `the result was produced while offline, so it must have been replayed${await explain()}`)
    assert.ok(Number(await page.locator('#resume').getAttribute('data-replayed')) >= 1)
    assert.equal(await page.locator('#state').getAttribute('data-state'), 'open')
    assert.deepEqual(problems.filter((p) => !/WebSocket|ERR_CONNECTION/.test(p)), [], 'no script errors on the page')
  },
)
