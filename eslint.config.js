import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tap/', 'migrations/', 'coverage/', 'bench/results/build/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', {
        selector: "MemberExpression[object.name='process'][property.name='env']",
        message: 'Read configuration through src/config.ts (agent: src/agent/options.ts).'
      }]
    }
  },
  {
    files: ['test/**', 'bench/**', 'src/config.ts', 'src/agent/options.ts', 'drizzle.config.ts'],
    rules: { 'no-restricted-syntax': 'off' }
  }
)
