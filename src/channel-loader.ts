/** Reads `CHANNELS_DIR`: every `*.yaml` parsed and checked before anything is written. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { ChannelFileError, parseChannelFile, type ChannelDefinition } from './domain/channel-file.js'

/** A parsed channel file and its base name in the directory: the file that manages the channel. */
export interface ChannelFileDefinition extends ChannelDefinition {
  file: string
}

export function readChannelDir (dir: string): ChannelFileDefinition[] {
  let entries: string[]
  try {
    if (!statSync(dir).isDirectory()) throw new ChannelFileError(dir, 'is not a directory')
    entries = readdirSync(dir)
  } catch (error) {
    if (error instanceof ChannelFileError) throw error
    throw new ChannelFileError(dir, 'channels directory cannot be read')
  }
  const definitions: ChannelFileDefinition[] = []
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
    definitions.push({ ...definition, file: entry })
  }
  return definitions
}

/**
 * The channel files to sync at start-up, or null when there is no directory to sync. A
 * CHANNELS_DIR that was set but does not exist is a mistake (a typo, a volume not mounted)
 * that would otherwise serve no channels at all, so it stops start-up; the default
 * `./channels` missing only means this installation manages its channels through the API.
 */
export function readStartupChannelDir (dir: string, explicit: boolean): ChannelFileDefinition[] | null {
  if (!existsSync(dir)) {
    if (explicit) throw new ChannelFileError(dir, 'CHANNELS_DIR does not exist (create it, or unset CHANNELS_DIR to manage channels through the API only)')
    return null
  }
  return readChannelDir(dir)
}
