/**
 * Runs the real server as a child process (`node --import tsx src/cli/index.ts serve`), the
 * way it runs in production, so a test can kill -9 it and start it again on the same data.
 *
 *   const port = await freePort()
 *   const server = await spawnServer({ PORT: String(port), DATABASE_URL: url, ... })
 *   await fetch(server.url + '/readyz')
 *   await server.kill('SIGKILL')
 */
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { TEST_CHILD_NODE_FLAGS } from './cli.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** A port nothing listens on right now (the OS picks it; the server binds it moments later). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      if (address === null || typeof address === 'string') return reject(new Error('no port'))
      probe.close(() => resolve(address.port))
    })
  })
}

export interface ServerProcess {
  url: string
  child: ChildProcess
  /** Everything the process wrote, for failure messages. */
  output (): string
  /** Sends the signal and waits for the process to be gone. */
  kill (signal?: NodeJS.Signals): Promise<void>
}

/**
 * Starts `chartcast serve` with exactly `env` (plus PATH and HOME) and waits until /readyz
 * answers 200. HOST is 127.0.0.1 unless given.
 */
export async function spawnServer (env: Record<string, string>, readyTimeoutMs = 60_000, build: 'source' | 'dist' = 'source'): Promise<ServerProcess> {
  const port = env.PORT ?? String(await freePort())
  const host = env.HOST ?? '127.0.0.1'
  // 'dist': the built command (npm test builds first), exactly what production runs.
  const entry = build === 'dist' ? ['dist/cli/index.js'] : ['--import', 'tsx', 'src/cli/index.ts']
  const child = spawn(process.execPath, [...TEST_CHILD_NODE_FLAGS, ...entry, 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn', ...env, PORT: port, HOST: host },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let gone = false
  void exited.then(() => { gone = true })

  const url = `http://${host}:${port}`
  const server: ServerProcess = {
    url,
    child,
    output: () => output,
    kill: async (signal = 'SIGKILL') => {
      if (!gone) child.kill(signal)
      await exited
    }
  }

  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (gone) throw new Error(`server exited before it was ready (code ${child.exitCode}):\n${output}`)
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })
      if (res.status === 200) return server
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await server.kill()
      throw new Error(`server not ready within ${readyTimeoutMs} ms:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
