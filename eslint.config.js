// Lint rules, including where native addons and the Kafka client may be imported:
// only state/ touches RocksDB, only gateway/ touches uWebSockets.js, only kafka/ touches @platformatic/kafka,
// only processors/redis/ (the Redis poller baseline and importer, their tests and benchmarks) touches ioredis,
// only blobs/ touches the S3 client.
// And the floors (scripts/lib/folder-rules.ts): which of weir's folders each source folder may import.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

import { FOLDER_RULES, forbiddenPatterns } from './scripts/lib/folder-rules.ts'

const confined = [
  { name: '@platformatic/kafka', home: 'kafka/' },
  { name: '@nxtedition/rocksdb', home: 'state/' },
  { name: 'rocksdb-native', home: 'state/' },
  { name: 'uWebSockets.js', home: 'gateway/' },
  { name: 'ioredis', home: 'processors/redis/' },
  { name: '@aws-sdk/client-s3', home: 'blobs/' },
  { name: '@aws-sdk/lib-storage', home: 'blobs/' },
]

function restrictedImportsExcept(allowed, patterns = []) {
  return {
    'no-restricted-imports': [
      'error',
      {
        paths: confined
          .filter((c) => !allowed.includes(c.name))
          .map((c) => ({ name: c.name, message: `Only ${c.home} may import ${c.name} (native addons and clients live in one room each).` })),
        patterns: patterns.map((regex) => ({
          regex,
          message: 'This folder may not import that one (the floors: scripts/lib/folder-rules.ts, docs/architecture.md).',
        })),
      },
    ],
  }
}

// The addons each source folder may import, for its floor block (which replaces the addon-only blocks below).
const addonsOf = { blobs: ['@aws-sdk/client-s3', '@aws-sdk/lib-storage'], kafka: ['@platformatic/kafka'], state: ['@nxtedition/rocksdb', 'rocksdb-native'], gateway: ['uWebSockets.js'], 'processors/redis': ['ioredis'] }

// One block per folder, deeper folders last (a later block replaces an earlier one's rule).
const floorBlocks = [...FOLDER_RULES]
  .sort((a, b) => a.folder.split('/').length - b.folder.split('/').length)
  .map((rule) => ({ files: [`${rule.folder}/**`], rules: restrictedImportsExcept(addonsOf[rule.folder] ?? [], forbiddenPatterns(rule)) }))

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
  ...floorBlocks,
  // ESLint's config format requires a default export, and declarations describe packages that have one.
  { files: ['eslint.config.js', '**/*.d.ts'], rules: { 'no-restricted-exports': 'off' } },
)
