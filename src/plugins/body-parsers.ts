/**
 * Request bodies: JSON and YAML, both parsed as untrusted input with bounded cost (see
 * src/domain/body-limits.ts). Prototype keys are refused here, at any depth, so nothing
 * downstream ever sees them.
 */
import fp from 'fastify-plugin'
import { checkBodyShape, checkJsonTextShape, MAX_BODY_DEPTH, MAX_BODY_NODES, MAX_YAML_BODY_BYTES, MAX_YAML_BODY_TOKENS } from '../domain/body-limits.js'
import { findForbiddenKey } from '../domain/values.js'
import { describeYamlError, parseUntrustedYaml, YamlInputError, YamlLimitError } from '../domain/yaml.js'
import { ChartcastError } from '../errors.js'

const YAML_BODY_LIMITS = { maxTokens: MAX_YAML_BODY_TOKENS, maxNodes: MAX_BODY_NODES, maxDepth: MAX_BODY_DEPTH }

function checkParsedBody (value: unknown): unknown {
  checkBodyShape(value)
  const forbidden = findForbiddenKey(value)
  if (forbidden !== null) throw new ChartcastError('FORBIDDEN_KEY', `the key "${forbidden}" is not allowed anywhere in a request body`)
  return value
}

/** A JSON request body as plain data, or a catalogued 4xx error. */
export function parseJsonBody (text: string): unknown {
  checkJsonTextShape(text)
  let value: unknown
  try {
    // Plain JSON.parse creates "__proto__" as an own key (no pollution); we then refuse it.
    value = JSON.parse(text)
  } catch (error) {
    throw new ChartcastError('MALFORMED_BODY', `request body is not valid JSON: ${(error as Error).message}`)
  }
  return checkParsedBody(value)
}

/** A YAML request body as plain data, or a catalogued 4xx error. */
export function parseYamlBody (text: string): unknown {
  let value: unknown
  try {
    value = parseUntrustedYaml(text, YAML_BODY_LIMITS)
  } catch (error) {
    if (error instanceof YamlLimitError) {
      throw error.limit === 'depth'
        ? new ChartcastError('VALIDATION_FAILED', `request body is nested deeper than ${MAX_BODY_DEPTH} levels`)
        : new ChartcastError('BODY_TOO_COMPLEX', `request body is too large for YAML: ${error.message}`)
    }
    if (error instanceof YamlInputError) throw new ChartcastError('MALFORMED_BODY', `request body is not valid YAML: ${describeYamlError(error)}`)
    throw error
  }
  // Aliases can still add depth or values beyond what the YAML walk counted; this check is exact.
  return checkParsedBody(value)
}

export default fp<{ bodyLimitBytes: number }>(async (fastify, opts) => {
  // Fastify's built-in text/plain parser would let a text body through to validation (400); only JSON and YAML are spoken (415 otherwise).
  fastify.removeContentTypeParser(['application/json', 'text/plain'])
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
  // fastify refuses a longer body (413) from its Content-Length, before reading it.
  const yamlBodyLimit = Math.min(opts.bodyLimitBytes, MAX_YAML_BODY_BYTES)
  fastify.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string', bodyLimit: yamlBodyLimit }, (_request, body, done) => {
    try {
      done(null, parseYamlBody(body as string))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
}, { name: 'chartcast-body-parsers' })
