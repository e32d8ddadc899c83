/**
 * 200 publishes and promotions at once, on each driver, half through app.inject and half
 * through a real HTTP listener: some publish the same version with identical bodies (200 "identical"),
 * some with conflicting bodies (409 RELEASE_CONFLICT), some promote the same version twice
 * (201 once, 200 "already"), some promote a version that may not be published yet (404).
 * Afterwards every acknowledged write is there, each version exists once, and the audit
 * log has exactly one row per acknowledged mutation and none for the rest.
 */
import t from 'tap'
import { auditLog, channelEvents, channelReleases, releases } from '../../src/db/schema.js'
import { createStore } from '../../src/db/store.js'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'

const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

type Op =
  | { kind: 'publish', version: string, variant: 'a' | 'b', body: Record<string, unknown> }
  | { kind: 'promote', channel: string, version: string }

interface Outcome { op: Op, status: number, body: Record<string, unknown> }

/** A small seeded shuffle, so a failure can be replayed. */
function shuffle<T> (items: T[], seed: number): T[] {
  const out = [...items]
  let x = seed
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff
    const j = x % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

function bodyOf (version: string, variant: 'a' | 'b'): Record<string, unknown> {
  return { version, chart, values: { variant, build: version, nested: { list: [variant, version] } }, notes: `variant ${variant}` }
}

function operations (): Op[] {
  const ops: Op[] = []
  for (let i = 0; i < 40; i++) {
    const version = `2.0.${i}`
    // Three identical publishes and one conflicting one per version; which lands first is up to the race.
    for (let k = 0; k < 3; k++) ops.push({ kind: 'publish', version, variant: 'a', body: bodyOf(version, 'a') })
    ops.push({ kind: 'publish', version, variant: 'b', body: bodyOf(version, 'b') })
  }
  // Promotions of releases published before the burst (twice each), and of releases being
  // published in it (twice each; a 404 when the promotion wins the race is not acknowledged).
  for (let i = 0; i < 10; i++) for (let k = 0; k < 2; k++) ops.push({ kind: 'promote', channel: 'beta', version: `1.0.${i}` })
  for (let i = 0; i < 10; i++) for (let k = 0; k < 2; k++) ops.push({ kind: 'promote', channel: 'stable', version: `2.0.${i}` })
  return ops
}

type Send = (method: string, url: string, token: string, payload: Record<string, unknown>) => Promise<{ status: number, body: Record<string, unknown> }>

function injectSender (s: TestServer): Send {
  return async (method, url, token, payload) => {
    const res = await s.app.inject({ method: method as 'POST', url, headers: { authorization: `Bearer ${token}` }, payload })
    return { status: res.statusCode, body: res.json() }
  }
}

async function httpSender (s: TestServer): Promise<Send> {
  const base = await s.listen()
  return async (method, url, token, payload) => {
    const res = await fetch(base + url, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(payload) })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
}

for (const driver of testDrivers()) {
  t.test(`${driver}: 200 concurrent publishes and promotions, half through app.inject, half over HTTP`, async (t) => {
    const s = await buildTestServer(t, { driver })
    for (const name of ['stable', 'beta']) t.equal((await s.putChannel(name)).statusCode, 201)
    for (let i = 0; i < 10; i++) t.equal((await s.publish(`1.0.${i}`)).statusCode, 201)
    const auditBefore = await s.database.db.select().from(auditLog)
    t.equal(auditBefore.length, 12, 'set-up: 2 channels, 10 releases')
    const lastSetupId = Math.max(...auditBefore.map((r) => r.id))

    const senders = [injectSender(s), await httpSender(s)]
    const ops = shuffle(operations(), 4242)
    t.equal(ops.length, 200)
    const outcomes: Outcome[] = await Promise.all(ops.map(async (op, i) => {
      const send = senders[i % 2]!
      const res = op.kind === 'publish'
        ? await send('POST', '/releases', s.tokens.publisher, op.body)
        : await send('POST', `/channels/${op.channel}/releases`, s.tokens.publisher, { version: op.version })
      return { op, ...res }
    }))

    t.same(outcomes.filter((o) => o.status >= 500).map((o) => o.body), [], 'no 5xx')

    // Publishes: per version, exactly one 201; the stored content is one of the two bodies;
    // every request with that body was acknowledged, every other one got 409.
    const stored = new Map((await s.database.db.select().from(releases)).map((r) => [r.version, r]))
    let published = 0
    for (let i = 0; i < 40; i++) {
      const version = `2.0.${i}`
      const mine = outcomes.filter((o): o is Outcome & { op: Extract<Op, { kind: 'publish' }> } => o.op.kind === 'publish' && o.op.version === version)
      const created = mine.filter((o) => o.status === 201)
      t.equal(created.length, 1, `${version}: exactly one 201`)
      const row = stored.get(version)
      if (row === undefined || created[0] === undefined) {
        t.fail(`${version} is missing`)
        continue
      }
      published++
      const winner = created[0].op.variant
      t.same(row.values, (bodyOf(version, winner).values), `${version}: stored content is the body that won`)
      t.equal(row.digest, created[0].body.digest, `${version}: stored digest is the acknowledged one`)
      for (const o of mine) {
        if (o.op.variant === winner) {
          t.ok(o.status === 201 || o.status === 200, `${version}/${o.op.variant}: acknowledged (${o.status})`)
          t.equal(o.body.digest, row.digest)
        } else {
          t.equal(o.status, 409, `${version}/${o.op.variant}: conflict`)
          t.equal(o.body.code, 'RELEASE_CONFLICT')
        }
      }
    }
    t.equal(stored.size, 10 + published, 'each version exists once, nothing else')

    // Promotions: per (channel, version), at most one 201, and a membership for every acknowledged one.
    const memberships = await s.database.db.select().from(channelReleases)
    const memberKeys = new Set(memberships.map((m) => `${m.channel}@${m.version}`))
    t.equal(memberKeys.size, memberships.length, 'each membership exists once')
    let promoted = 0
    const pairs = new Set(ops.filter((o) => o.kind === 'promote').map((o) => `${o.channel}@${o.version}`))
    for (const key of pairs) {
      const mine = outcomes.filter((o) => o.op.kind === 'promote' && `${o.op.channel}@${o.op.version}` === key)
      const statuses = mine.map((o) => o.status)
      for (const status of statuses) t.ok([200, 201, 404].includes(status), `${key}: ${status} is 201, 200 or 404`)
      const created = statuses.filter((st) => st === 201).length
      t.ok(created <= 1, `${key}: at most one 201`)
      if (statuses.some((st) => st === 200 || st === 201)) {
        t.equal(created, 1, `${key}: acknowledged, so promoted exactly once`)
        t.ok(memberKeys.has(key), `${key}: acknowledged promotion is present`)
        promoted++
      } else {
        t.notOk(memberKeys.has(key), `${key}: refused promotion left no membership`)
      }
      if (key.startsWith('beta@')) t.equal(created, 1, `${key}: a published release is always promotable`)
    }
    t.equal(memberships.length, promoted, 'no membership without an acknowledged promotion')
    t.equal((await s.database.db.select().from(channelEvents)).length, promoted, 'one channel event per promotion')

    // Audit: one row per 201, none for "identical", "already promoted", conflicts or 404s.
    const audit = (await s.database.db.select().from(auditLog)).filter((r) => r.id > lastSetupId)
    const created201 = (kind: Op['kind']) => outcomes.filter((o) => o.op.kind === kind && o.status === 201).length
    t.equal(audit.filter((r) => r.action === 'release.publish').length, created201('publish'), 'an audit row per created release')
    t.equal(audit.filter((r) => r.action === 'channel.promote').length, created201('promote'), 'an audit row per promotion')
    t.equal(audit.length, created201('publish') + created201('promote'), 'and no other audit rows')
    t.equal(new Set(audit.filter((r) => r.action === 'release.publish').map((r) => r.target)).size, published, 'no release audited twice')
    t.equal((await createStore(s.database.db).verifyAuditChain()).broken, null, 'the audit rows form one unbroken hash chain')

    // What the API serves agrees with the database.
    const head = await s.app.inject({ url: '/channels/beta/spec', headers: { authorization: `Bearer ${await s.license()}` } })
    t.equal(head.statusCode, 200)
    t.equal(head.json().version, '1.0.9', 'the beta head is the highest promoted version')
  })
}
