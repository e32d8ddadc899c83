/**
 * The module hooks test/helpers/bundled-typebox.mjs registers: an import that resolves to one
 * of the installed typebox's entry files loads the bundle's file for it instead.
 */

/** Installed entry file URL -> bundle file URL. */
let redirects = {}

export function initialize (data) {
  redirects = data
}

export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  const bundled = redirects[resolved.url]
  return bundled === undefined ? resolved : { ...resolved, url: bundled, format: 'module' }
}
