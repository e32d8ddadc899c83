import t from 'tap'
import { ChannelFileError, parseChannelFile } from '../../src/domain/channel-file.js'

t.test('a complete channel file parses to a definition', async (t) => {
  const text = 'name: stable\ndescription: Production\nvalues:\n  replicas: 3\naccepts: ">=0.18.0 <1.0.0"\npollInterval: 1h\n'
  t.same(parseChannelFile('channels/stable.yaml', text), { name: 'stable', description: 'Production', values: { replicas: 3 }, accepts: '>=0.18.0 <1.0.0', pollInterval: '1h' })
})

t.test('optional fields default to empty description, empty values and nulls', async (t) => {
  t.same(parseChannelFile('dev.yml', 'name: dev\n'), { name: 'dev', description: '', values: {}, accepts: null, pollInterval: null })
})

t.test('the name must match the file name', async (t) => {
  const error = t.throws(() => parseChannelFile('/x/beta.yaml', 'name: stable\n')) as ChannelFileError
  t.ok(error instanceof ChannelFileError)
  t.equal(error.file, '/x/beta.yaml')
  t.match(error.message, /name "stable" does not match the file name "beta"/)
})

t.test('a YAML syntax error names the file and line', async (t) => {
  const error = t.throws(() => parseChannelFile('stable.yaml', 'name: stable\nvalues: [oops\ndescription: x\n')) as ChannelFileError
  t.ok(error instanceof ChannelFileError)
  t.match(error.message, /^stable\.yaml: line \d+, column \d+: /)
})

t.test('a duplicate key names the file and the line it is on', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\ndescription: a\ndescription: b\n'), { name: 'ChannelFileError', message: /^stable\.yaml: line 3, column 1: / })
})

t.test('unknown fields are refused, naming the file', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\ncolour: blue\n'), { name: 'ChannelFileError', message: /^stable\.yaml: / })
})

t.test('a field of the wrong type is refused, naming the field', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\nvalues: [1, 2]\n'), { name: 'ChannelFileError', message: /stable\.yaml: values/ })
})

t.test('a channel name that is not a DNS label is refused', async (t) => {
  t.throws(() => parseChannelFile('Stable_1.yaml', 'name: Stable_1\n'), ChannelFileError)
})

t.test('an invalid accepts range is refused with the range quoted', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\naccepts: banana\n'), { name: 'ChannelFileError', message: /stable\.yaml: accepts "banana"/ })
})

t.test('an invalid pollInterval is refused', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\npollInterval: hourly\n'), { name: 'ChannelFileError', message: /pollInterval "hourly"/ })
})

t.test('forbidden keys in channel values are refused', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\nvalues:\n  a:\n    constructor: 1\n'), { name: 'ChannelFileError', message: /a\.constructor/ })
})

t.test('custom YAML tags are refused', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\ndescription: !!js/function "f"\n'), ChannelFileError)
})

t.test('an empty file or a list is not a channel', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', ''), ChannelFileError)
  t.throws(() => parseChannelFile('stable.yaml', '- name: stable\n'), ChannelFileError)
})

t.test('a misspelt key is refused as unknown, with the nearest allowed key and the allowed list', async (t) => {
  const error = t.throws(() => parseChannelFile('stable.yaml', 'name: stable\nacepts: ">=1.0.0"\n')) as ChannelFileError
  t.equal(error.message, 'stable.yaml: unknown key "acepts"; did you mean "accepts"? allowed: name, description, values, accepts, pollInterval')
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\npollinterval: 1h\n'), { message: /unknown key "pollinterval"; did you mean "pollInterval"\?/ })
})

t.test('an unknown key that resembles nothing lists the allowed keys without a guess', async (t) => {
  const error = t.throws(() => parseChannelFile('stable.yaml', 'name: stable\ncolour: blue\n')) as ChannelFileError
  t.equal(error.message, 'stable.yaml: unknown key "colour"; allowed: name, description, values, accepts, pollInterval')
})

t.test('NUL or a lone surrogate anywhere in a channel file is refused, naming where', async (t) => {
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\ndescription: "Prod\\0"\n'), { name: 'ChannelFileError', message: 'stable.yaml: description contains a NUL character (U+0000), which cannot be stored' })
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\nvalues:\n  a:\n    b: "x\\ud800"\n'), { name: 'ChannelFileError', message: /^stable\.yaml: values\.a\.b contains an unpaired surrogate \(U\+D800\)/ })
  t.throws(() => parseChannelFile('stable.yaml', 'name: stable\nvalues:\n  "k\\0": 1\n'), { name: 'ChannelFileError', message: /^stable\.yaml: the key values\.k\\u0000 contains a NUL/ })
})
