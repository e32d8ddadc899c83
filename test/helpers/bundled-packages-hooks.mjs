/**
 * The module hooks test/helpers/bundled-packages.mjs registers: an import that resolves to one
 * of a bundled package's listed entry files loads the bundle's file for it instead, and an
 * import of any other file of that package is refused, naming the package.
 */

/** Installed entry file URL -> bundle file URL. */
let redirects = {}
/** { name, url } of each bundled package's directory. */
let guarded = []

export function initialize (data) {
  redirects = data.redirects
  guarded = data.guarded
}

export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  const bundled = redirects[resolved.url]
  if (bundled !== undefined) return { ...resolved, url: bundled, format: 'module' }
  const unbundled = guarded.find((entry) => resolved.url.startsWith(entry.url))
  if (unbundled !== undefined) {
    throw new Error(`${specifier} (from ${context.parentURL ?? 'the command line'}) is a part of ${unbundled.name} that test/helpers/bundled-packages.mjs does not bundle; add its subpath to PACKAGES there, or a second copy of ${unbundled.name} loads`)
  }
  return resolved
}
