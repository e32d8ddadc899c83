/** Parsing `channels/*.yaml`: one file per channel, the file name equal to `name`. */
import path from 'node:path'
import { Compile } from 'typebox/compile'
import { ChannelFile } from '../schemas.js'
import { checkAcceptsRange, checkPollInterval } from './channel.js'
import { checkValues } from './release.js'
import { describeYamlError, parseUntrustedYaml, YamlInputError } from './yaml.js'
import { ChartcastError } from '../errors.js'

const validateChannelFile = Compile(ChannelFile)

export interface ChannelDefinition {
  name: string
  description: string
  values: Record<string, unknown>
  accepts: string | null
  pollInterval: string | null
}

export class ChannelFileError extends Error {
  constructor (readonly file: string, readonly problem: string) {
    super(`${file}: ${problem}`)
    this.name = 'ChannelFileError'
  }
}

/** Parses one channel file's text; `fileName` is used for messages and the name check. */
export function parseChannelFile (fileName: string, text: string): ChannelDefinition {
  let data: unknown
  try {
    data = parseUntrustedYaml(text)
  } catch (error) {
    if (error instanceof YamlInputError) throw new ChannelFileError(fileName, describeYamlError(error))
    throw error
  }
  if (!validateChannelFile.Check(data)) {
    const first = validateChannelFile.Errors(data)[0]
    const where = first === undefined || first.instancePath === '' ? 'document' : first.instancePath.slice(1).replaceAll('/', '.')
    throw new ChannelFileError(fileName, `${where}: ${first?.message ?? 'does not match the channel schema'}`)
  }
  const expected = path.basename(fileName).replace(/\.ya?ml$/, '')
  if (data.name !== expected) throw new ChannelFileError(fileName, `name "${data.name}" does not match the file name "${expected}"`)
  try {
    return {
      name: data.name,
      description: data.description ?? '',
      values: checkValues(data.values ?? {}, 'values'),
      accepts: data.accepts === undefined ? null : checkAcceptsRange(data.accepts),
      pollInterval: data.pollInterval === undefined ? null : checkPollInterval(data.pollInterval)
    }
  } catch (error) {
    if (error instanceof ChartcastError) throw new ChannelFileError(fileName, error.detail)
    throw error
  }
}
