/** Parsing `channels/*.yaml`: one file per channel, the file name equal to `name`. */
import path from 'node:path'
import { Compile } from 'typebox/compile'
import { ChannelFile } from '../schemas.js'
import { checkAcceptsRange, checkPollInterval } from './channel.js'
import { checkValues } from './release.js'
import { describeYamlError, parseUntrustedYaml, YamlInputError } from './yaml.js'
import { describeUnstorableText, findUnstorableText } from './storable-text.js'
import { allowedKeysAt, describeUnknownKey, pointerSegments } from './unknown-key.js'
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
  if (!validateChannelFile.Check(data)) throw new ChannelFileError(fileName, describeSchemaError(data))
  const unstorable = findUnstorableText(data)
  if (unstorable !== null) throw new ChannelFileError(fileName, describeUnstorableText(unstorable))
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

/** The first schema error, in words; an unknown key names the allowed ones rather than "schema is false". */
function describeSchemaError (data: unknown): string {
  const first = validateChannelFile.Errors(data)[0]
  if (first === undefined) return 'does not match the channel schema'
  const segments = pointerSegments(first.instancePath)
  // TypeBox reports a key refused by `additionalProperties: false` as the boolean schema `false` at that key.
  if (first.keyword === 'boolean' && first.schemaPath.endsWith('/additionalProperties') && segments.length > 0) {
    const parent = segments.slice(0, -1)
    const message = describeUnknownKey(segments[segments.length - 1]!, allowedKeysAt(ChannelFile, parent) ?? [])
    return parent.length === 0 ? message : `${parent.join('.')}: ${message}`
  }
  return `${segments.length === 0 ? 'document' : segments.join('.')}: ${first.message}`
}
