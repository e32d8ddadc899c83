/** Semantic version precedence (semver.org, section 11) for sorting what the API returns; the server decides heads itself. */
function parts (version: string): { core: number[], pre: string[] } {
  const [main = '', pre] = version.split('+')[0]!.split(/-(.*)/s)
  return { core: main.split('.').map((n) => Number(n)), pre: pre === undefined || pre === '' ? [] : pre.split('.') }
}

export function compareVersions (a: string, b: string): number {
  const x = parts(a)
  const y = parts(b)
  for (let i = 0; i < 3; i++) {
    const d = (x.core[i] ?? 0) - (y.core[i] ?? 0)
    if (d !== 0 && !Number.isNaN(d)) return Math.sign(d)
  }
  if (x.pre.length === 0 || y.pre.length === 0) return x.pre.length === y.pre.length ? 0 : x.pre.length === 0 ? 1 : -1
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i]
    const q = y.pre[i]
    if (p === undefined) return -1
    if (q === undefined) return 1
    const pn = /^[0-9]+$/.test(p)
    const qn = /^[0-9]+$/.test(q)
    if (pn && qn && Number(p) !== Number(q)) return Math.sign(Number(p) - Number(q))
    if (pn !== qn) return pn ? -1 : 1
    if (p !== q) return p < q ? -1 : 1
  }
  return 0
}

export const compareVersionsDescending = (a: string, b: string): number => {
  if (a === 'unknown') return 1
  if (b === 'unknown') return -1
  return compareVersions(b, a)
}
