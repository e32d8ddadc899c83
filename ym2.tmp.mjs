import { Lexer, Parser, Composer, parseDocument } from 'yaml'
const n = 40000
const cases = {
  blockseq: '- 0\n'.repeat(n*5),
  comments: '#c\n'.repeat(n*10) + 'a: 1',
  map: Array.from({length: n}, (_, i) => `k${i}: ${i}`).join('\n'),
}
for (let rep = 0; rep < 3; rep++) for (const [name, text] of Object.entries(cases)) {
  let t0 = performance.now(); let c = 0
  for (const tok of new Lexer().lex(text)) c++
  let t1 = performance.now()
  let items = []
  for (const tok of new Parser().parse(text)) items.push(tok)
  let t2 = performance.now()
  const docs = [...new Composer({version:'1.2', schema: 'core', uniqueKeys: false, strict: true}).compose(items)]
  let t3 = performance.now()
  console.log(rep, name, (text.length/1024).toFixed(0)+'kB', 'tokens', c, 'lex', (t1-t0).toFixed(0), 'parse(cst)', (t2-t1).toFixed(0), 'compose', (t3-t2).toFixed(0))
}
