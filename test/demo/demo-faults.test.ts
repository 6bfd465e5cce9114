// The demo page's fault switch end to end: the demo's worker (--faults true) and gateway on the shared broker,
// the page in headless Chromium. Switching a preset on writes its rule to the worker's control topic; the next
// commands show its effect (an injected non-retriable error, a timeout from an injected delay), the page shows
// the worker's injection count, and switching off brings the service back, all without a restart.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'

import { startDemo } from '../../scripts/demo.ts'
import type { Demo } from '../../scripts/demo.ts'
import { admin, brokers, closeAdmin, uniqueName } from '../helpers/kafka.ts'

const executablePath = process.env.WEIR_CHROMIUM

after(closeAdmin)

test(
  'the demo page switches faults on and off and shows their effect: an injected error, a timeout',
  { skip: executablePath ? false : 'WEIR_CHROMIUM is not set: `npm test` provides Chromium; by hand, run it with WEIR_CHROMIUM=/usr/bin/chromium' },
  async (t) => {
    const prefix = uniqueName('demofaults')
    const quiet = { step: () => {}, done: () => {} }
    const started: { demo?: Demo } = {}
    t.after(async () => {
      await started.demo?.stop()
      const client = admin()
      const mine = (await client.listTopics()).filter((name) => name.startsWith(prefix))
      if (mine.length > 0) await client.deleteTopics(mine).catch(() => {})
    })
    const demo = await startDemo({ brokers: brokers(), port: 0, gatewayPort: 0, prefix, partitions: 2, progress: quiet, readyTimeoutMs: 90_000 })
    started.demo = demo
    const browser: Browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'] })
    t.after(() => browser.close())
    const page: Page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    const waitFor = async (selector: string, timeout = 30_000) => {
      try {
        await page.waitForSelector(selector, { timeout })
      } catch (error) {
        const log = await page.locator('#log').innerText().catch(() => '')
        throw new Error(`${selector} did not appear within ${timeout} ms${problems.join('\n')}\n${log.slice(0, 2000)}`, { cause: error })
      }
    }
    const row = (path: string, status: string) => `#commands tr[data-path="${path}"][data-status="${status}"]`

    await page.goto(demo.url)
    await waitFor('body[data-ready="true"]')
    await waitFor('#faults button[data-preset="error"]')
    assert.equal(await page.locator('#faults').getAttribute('data-active'), 'off')

    const orderId = await page.inputValue('#place-order-id')
    await page.click('#place')
    await waitFor(row('orders/orders/place', 'ok'))

    // Cancel fails with an injected non-retriable error while the preset is on.
    await page.click('#faults button[data-preset="error"]')
    await waitFor('#faults[data-active="error"][data-rules="1"]')
    assert.equal(await page.inputValue('#cancel-order-id'), orderId)
    await page.click('#cancel')
    await waitFor(row('orders/orders/cancel', 'error'))
    const failed = await page.locator(`${row('orders/orders/cancel', 'error')} td.outcome`).innerText()
    assert.match(failed, /WEIR_ERR_NON_RETRIABLE: fault injected by rule demo-error/)
    await waitFor('#faults .fault-injected[data-total="1"]', 10_000)
    assert.match(await page.locator('#faults .fault-injected').innerText(), /error:demo-error ×1/)

    await page.click('#faults button[data-preset="off"]')
    await waitFor('#faults[data-active="off"][data-rules="0"]')
    await page.click('#cancel')
    await waitFor(row('orders/orders/cancel', 'ok'))

    // Place is held 2 s by an injected delay: with a 1 s TTL, the timeout is the outcome.
    await page.click('#faults button[data-preset="timeout"]')
    await waitFor('#faults[data-active="timeout"][data-rules="1"]')
    await page.fill('#place-ttl', '1000')
    await page.click('#place')
    await waitFor(row('orders/orders/place', 'timeout'))
    assert.match(await page.locator(`${row('orders/orders/place', 'timeout')} td.outcome`).innerText(), /WEIR_ERR_DEADLINE_EXCEEDED/)
    await page.click('#faults button[data-preset="off"]')
    await waitFor('#faults[data-active="off"][data-rules="0"]')
    assert.deepEqual(problems, [], 'no script errors on the page')
  },
)
