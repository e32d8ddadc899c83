/**
 * Compiled route schemas shared by every app a test process builds (test/helpers/server.ts).
 * Building an app compiles each route's request schemas with Ajv and its response schemas
 * with fast-json-stringify, about a third of the CPU a test server costs; a test file builds
 * dozens of apps from the same schemas. Here each distinct schema (by content, with the same
 * options and shared schemas) is compiled once per process by fastify's own default
 * compilers, and later apps get the same function, so what is validated and serialised does
 * not change.
 *
 * One difference is guarded: with a custom validator factory, fastify no longer lower-cases
 * the property names of header schemas, so a header schema with an upper-case name is refused
 * here rather than validated differently from production.
 */
import { createRequire } from 'node:module'

interface RouteSchema { schema: unknown, method?: string, url?: string, httpPart?: string, httpStatus?: string, contentType?: string }
type Compiled = (data: unknown) => unknown
type CompilerFactory = (externalSchemas: unknown, options: unknown) => (route: RouteSchema) => Compiled

const require = createRequire(import.meta.url)
// fastify's default factories, the ones it builds when none is given.
const defaultValidators = (require('@fastify/ajv-compiler') as () => CompilerFactory)()
const defaultSerializers = (require('@fastify/fast-json-stringify-compiler') as () => CompilerFactory)()

function sharing (factory: CompilerFactory, check: (route: RouteSchema) => void = () => {}): CompilerFactory {
  const compiled = new Map<string, Compiled>()
  return (externalSchemas, options) => {
    const build = factory(externalSchemas, options)
    const prefix = JSON.stringify([externalSchemas ?? null, options ?? null])
    return (route) => {
      check(route)
      const key = `${prefix}\n${route.httpPart ?? ''}\n${route.httpStatus ?? ''}\n${route.contentType ?? ''}\n${JSON.stringify(route.schema)}`
      let fn = compiled.get(key)
      if (fn === undefined) {
        fn = build(route)
        compiled.set(key, fn)
      }
      return fn
    }
  }
}

function lowerCaseHeaderNames (route: RouteSchema): void {
  if (route.httpPart !== 'headers' || route.schema === null || typeof route.schema !== 'object') return
  const { properties, required } = route.schema as { properties?: Record<string, unknown>, required?: unknown }
  const names = [...Object.keys(properties ?? {}), ...(Array.isArray(required) ? required as string[] : [])]
  const upper = names.find((name) => name !== name.toLowerCase())
  if (upper !== undefined) throw new Error(`${route.method ?? ''} ${route.url ?? ''}: name header "${upper}" in lower case (test/helpers/shared-compilers.ts)`)
}

export const sharedCompilers = {
  buildValidator: sharing(defaultValidators, lowerCaseHeaderNames),
  buildSerializer: sharing(defaultSerializers)
}
