/** Reads `CHANNELS_DIR`: every `*.yaml` parsed and checked before anything is written. */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { ChannelFileError, parseChannelFile, type ChannelDefinition } from './domain/channel-file.js'

export function readChannelDir (dir: string): ChannelDefinition[] {
  let entries: string[]
  try {
    if (!statSync(dir).isDirectory()) throw new ChannelFileError(dir, 'is not a directory')
    entries = readdirSync(dir)
  } catch (error) {
    if (error instanceof ChannelFileError) throw error
    throw new ChannelFileError(dir, 'channels directory cannot be read')
  }
  const definitions: ChannelDefinition[] = []
  const seen = new Map<string, string>()
  for (const entry of entries.filter((e) => /\.ya?ml$/.test(e)).sort()) {
    const file = path.join(dir, entry)
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      // fs messages (EISDIR, EACCES) do not name the file; start-up must say which one.
      throw new ChannelFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    const definition = parseChannelFile(file, text)
    const previous = seen.get(definition.name)
    if (previous !== undefined) throw new ChannelFileError(file, `channel "${definition.name}" is also defined in ${previous}`)
    seen.set(definition.name, file)
    definitions.push(definition)
  }
  return definitions
}
