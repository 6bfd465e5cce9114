// Whether the Java baselines (bench/baselines/kafka-streams) can run here: built already, or Maven present to build them.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { KAFKA_STREAMS_PROJECT } from '../../bench/baselines/kafka-streams.ts'

function hasMaven(): boolean {
  try {
    execFileSync('mvn', ['-v'], { stdio: 'ignore', timeout: 60_000 })
    return true
  } catch {
    return false
  }
}

export function javaBaselineBuildable(): boolean {
  return existsSync(join(KAFKA_STREAMS_PROJECT, 'target', 'weir-streams-baseline.jar')) || hasMaven()
}
