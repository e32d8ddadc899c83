/**
 * Request bodies: JSON and YAML, both parsed as untrusted input. Prototype keys are refused
 * here, at any depth, so nothing downstream ever sees them.
 */
import fp from 'fastify-plugin'
import { findForbiddenKey } from '../domain/values.js'
import { describeYamlError, parseUntrustedYaml, YamlInputError } from '../domain/yaml.js'
import { ChartcastError } from '../errors.js'

/**
 * Helm values are a handful of levels deep. A body nested deeper is refused here, by an
 * iterative walk, before any recursive one (key check, canonical JSON, merge) overflows the
 * stack: a 20 kB body of "[[[[..." otherwise ended as a 500.
 */
export const MAX_BODY_DEPTH = 64

function exceedsDepth (value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, depth] = item
    if (node === null || typeof node !== 'object') continue
    if (depth > max) return true
    for (const child of Object.values(node)) stack.push([child, depth + 1])
  }
  return false
}

function refuseForbiddenKeys (value: unknown): unknown {
  if (exceedsDepth(value, MAX_BODY_DEPTH)) throw new ChartcastError('VALIDATION_FAILED', `request body is nested deeper than ${MAX_BODY_DEPTH} levels`)
  const forbidden = findForbiddenKey(value)
  if (forbidden !== null) throw new ChartcastError('FORBIDDEN_KEY', `the key "${forbidden}" is not allowed anywhere in a request body`)
  return value
}

export default fp(async (fastify) => {
  // Fastify's built-in text/plain parser would let a text body through to validation (400); only JSON and YAML are spoken (415 otherwise).
  fastify.removeContentTypeParser(['application/json', 'text/plain'])
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    let value: unknown
    try {
      // Plain JSON.parse creates "__proto__" as an own key (no pollution); we then refuse it.
      value = JSON.parse(body as string)
    } catch (error) {
      done(new ChartcastError('MALFORMED_BODY', `request body is not valid JSON: ${(error as Error).message}`), undefined)
      return
    }
    try {
      done(null, refuseForbiddenKeys(value))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
  fastify.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, refuseForbiddenKeys(parseUntrustedYaml(body as string)))
    } catch (error) {
      if (error instanceof YamlInputError) done(new ChartcastError('MALFORMED_BODY', `request body is not valid YAML: ${describeYamlError(error)}`), undefined)
      else done(error as Error, undefined)
    }
  })
}, { name: 'chartcast-body-parsers' })
