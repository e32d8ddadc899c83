import { Lexer } from 'yaml'
const M = 1024*1024
const fill = (unit) => unit.repeat(Math.floor(M / unit.length))
const cases = {
  blockseq: fill('- 0\n'), comments: fill('#\n'), flowseq: '[' + fill('0,') + '0]', deep: fill('['), 
  longplain: 'a: ' + fill('x'), spaces: 'a:' + fill(' ') + '1', nl: fill('\n'), indent: fill(' a:\n'), quoted: 'a: "' + fill('\\"') + '"', multiq: 'a: "' + fill('x\n') + '"',
  blockscalar: 'a: |\n' + fill('  x\n'), doc: fill('---\n'), tags: fill('- !a 1\n'), anchors: fill('- &a 1\n'),
}
for (let rep = 0; rep < 2; rep++) for (const [name, text] of Object.entries(cases)) {
  let t0 = performance.now(); let c = 0
  for (const tok of new Lexer().lex(text)) { if (++c > 100000) break }
  let t1 = performance.now()
  console.log(rep, name, 'tokens', c, 'lex to cap', (t1-t0).toFixed(1))
}
