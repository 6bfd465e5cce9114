// Lint rules, including where native addons and the Kafka client may be imported:
// only state/ touches RocksDB, only gateway/ touches uWebSockets.js, only kafka/ touches @platformatic/kafka,
// only processors/redis/ (the Redis poller baseline and importer, their tests and benchmarks) touches ioredis.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const confined = [
  { name: '@platformatic/kafka', home: 'kafka/' },
  { name: '@nxtedition/rocksdb', home: 'state/' },
  { name: 'rocksdb-native', home: 'state/' },
  { name: 'uWebSockets.js', home: 'gateway/' },
  { name: 'ioredis', home: 'processors/redis/' },
]

function restrictedImportsExcept(allowed) {
  return {
    'no-restricted-imports': [
      'error',
      {
        paths: confined
          .filter((c) => !allowed.includes(c.name))
          .map((c) => ({ name: c.name, message: `Only ${c.home} may import ${c.name} (native addons and clients live in one room each).` })),
      },
    ],
  }
}

export default tseslint.config(
  { ignores: ['node_modules/**', '.weir/**', 'bench/baselines/**/target/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-restricted-exports': ['error', { restrictDefaultExports: { direct: true, named: true, defaultFrom: true, namedFrom: true, namespaceFrom: true } }],
      eqeqeq: ['error', 'always'],
      ...restrictedImportsExcept([]),
    },
  },
  // First among the overrides: a later, more specific block (bench/state/**, bench/gateway/**) replaces it.
  { files: ['processors/redis/**', 'test/processors/redis/**', 'bench/**'], rules: restrictedImportsExcept(['ioredis']) },
  { files: ['kafka/**'], rules: restrictedImportsExcept(['@platformatic/kafka']) },
  { files: ['state/**', 'bench/state/**'], rules: restrictedImportsExcept(['@nxtedition/rocksdb', 'rocksdb-native']) },
  { files: ['gateway/**', 'test/gateway/**', 'bench/gateway/**'], rules: restrictedImportsExcept(['uWebSockets.js']) },
  // ESLint's config format requires a default export, and declarations describe packages that have one.
  { files: ['eslint.config.js', '**/*.d.ts'], rules: { 'no-restricted-exports': 'off' } },
)
