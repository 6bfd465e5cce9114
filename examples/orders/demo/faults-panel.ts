// The demo page's fault switch: one button per preset of the page server's /faults (examples/orders/demo-faults.ts),
// which writes the preset's rule to the worker's fault control topic, and what the worker injected so far, read
// again every two seconds. docs/faults.md says what each kind does.
interface FaultsState {
  active: string
  presets: Array<{ id: string; label: string; hint: string }>
  injected: Array<{ kind: string; rule: string; count: number }>
  rulesInForce: number
}

export async function startFaultsPanel(root: HTMLElement, log: (message: string) => void): Promise<void> {
  const buttons = root.querySelector('.fault-buttons') as HTMLElement
  const hint = root.querySelector('.fault-hint') as HTMLElement
  const counts = root.querySelector('.fault-injected') as HTMLElement
  const render = (state: FaultsState) => {
    root.dataset.active = state.active
    // The worker applies a switch within a fetch round; until then the rules in force are the previous ones.
    root.dataset.rules = String(state.rulesInForce)
    ;(root.querySelector('.fault-rules') as HTMLElement).textContent = String(state.rulesInForce)
    for (const button of buttons.querySelectorAll('button')) button.classList.toggle('on', button.dataset.preset === state.active)
    hint.textContent = state.presets.find((p) => p.id === state.active)?.hint ?? 'No fault: every command is handled as usual.'
    counts.textContent = state.injected.length === 0 ? 'none injected yet' : state.injected.map((i) => `${i.kind}:${i.rule} ×${i.count}`).join(', ')
    counts.dataset.total = String(state.injected.reduce((sum, i) => sum + i.count, 0))
  }
  const choose = async (preset: string) => {
    const response = await fetch('/faults', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ preset }) })
    const state = (await response.json()) as FaultsState
    render(state)
    log(preset === 'off' ? 'faults off (control topic: clear)' : `fault on: ${preset} (control topic: set)`)
  }
  const state = (await (await fetch('/faults')).json()) as FaultsState
  for (const preset of [{ id: 'off', label: 'Off' }, ...state.presets]) {
    const button = document.createElement('button')
    button.dataset.preset = preset.id
    button.textContent = preset.label
    button.addEventListener('click', () => void choose(preset.id).catch((error: unknown) => log(`fault switch failed: ${String(error)}`)))
    buttons.append(button)
  }
  render(state)
  setInterval(() => {
    void fetch('/faults')
      .then(async (r) => render((await r.json()) as FaultsState))
      .catch(() => {})
  }, 2000)
}
