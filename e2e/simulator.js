'use strict';
// The AppSync API of infra/schema.graphql on amplify-appsync-simulator, every
// Query and Mutation field resolved by the `fn-api` Lambda function running
// under `cargo lambda watch`.
//
//   node e2e/simulator.js --port P --ws-port W --lambda-url URL [--schema FILE]
//
// Listens on 127.0.0.1 only; prints one line `simulator: ready URL` once it
// serves; stops on SIGTERM/SIGINT. Also usable as a module (startSimulator).
//
// What stands in for what:
// - AppSync direct Lambda resolvers: the simulator has none, so each field
//   gets a unit resolver on an AWS_LAMBDA data source whose request mapping
//   passes the direct-resolver event through unchanged (REQUEST_TEMPLATE) and
//   whose response mapping turns a function error into a GraphQL error with
//   its errorType (RESPONSE_TEMPLATE) — what AppSync does for a direct
//   resolver.
// - Lambda Invoke: a POST of the event to the emulator's Invoke URL. The
//   emulator answers a function error with HTTP 500 and
//   {errorType, errorMessage} (real Lambda: 200 and X-Amz-Function-Error);
//   both become a thrown error carrying `type`, which the simulator exposes
//   as $ctx.error.type / $ctx.error.message.
// - Auth: Cognito user pools (default; the simulator decodes the JWT without
//   checking its signature) and IAM (additional; SigV4 is not checked
//   either, the access key id picks the role). One fidelity fix: the
//   simulator gives identity.sourceIp as a string, AppSync as a list.

const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');

const LOOPBACK = '127.0.0.1';

// The simulator has no host option and listens on every interface: make
// every net server in this process listen on loopback. Must run before the
// simulator is loaded.
const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0];
  if (first === undefined || first === null || typeof first === 'number' ||
      (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen([port][, host][, backlog][, callback])
    const port = first == null ? 0 : Number(first);
    const rest = typeof args[1] === 'string' ? args.slice(2) : args.slice(1);
    return originalListen.call(this, port, LOOPBACK, ...rest);
  }
  if (first && typeof first === 'object' && first.path === undefined &&
      first.fd === undefined && first.handle === undefined && !('_handle' in first)) {
    // listen(options[, callback])
    return originalListen.call(this, { ...first, host: LOOPBACK }, ...args.slice(1));
  }
  return originalListen.apply(this, args);
};

const { parse, Kind } = require('graphql');
const { AmplifyAppSyncSimulator, AmplifyAppSyncSimulatorAuthenticationType: Auth } =
  require('amplify-appsync-simulator');

const DEFAULT_SCHEMA = path.join(__dirname, '..', 'infra', 'schema.graphql');
const DATA_SOURCE = 'fnApi';

// The event AppSync sends a direct Lambda resolver (the shape
// aws_lambda_events' AppSyncDirectResolverEvent reads), built from what the
// simulator puts in $ctx. Every value goes through $util.toJson, so the
// result is JSON whatever the arguments hold. $ctx.info.parentTypeName is a
// GraphQL type object in the simulator; toJson prints its name.
const REQUEST_TEMPLATE = `{
  "version": "2018-05-29",
  "operation": "Invoke",
  "payload": {
    "arguments": $util.toJson($ctx.arguments),
    "identity": $util.toJson($ctx.identity),
    "source": $util.toJson($ctx.source),
    "request": { "headers": $util.toJson($ctx.request.headers) },
    "prev": null,
    "stash": {},
    "info": {
      "fieldName": $util.toJson($ctx.info.fieldName),
      "parentTypeName": $util.toJson($ctx.info.parentTypeName),
      "variables": $util.toJson($ctx.info.variables),
      "selectionSetList": $util.toJson($ctx.info.selectionSetList),
      "selectionSetGraphQL": $util.toJson($ctx.info.selectionSetGraphQL)
    }
  }
}`;

// The resolvers' response mapping template, read from template.yaml so that
// the simulator runs exactly what AppSync will: fn-api answers {"data": …}
// or {"error": {"type", "message"}}; only INTERNAL is a function error.
function responseTemplate() {
  const text = fs.readFileSync(path.join(__dirname, '..', 'template.yaml'), 'utf8');
  const found = new Set([...text.matchAll(/^\s+ResponseMappingTemplate: '([^']*)'$/gm)].map((m) => m[1]));
  if (found.size !== 1) throw new Error(`template.yaml: expected one response mapping template, found ${found.size}`);
  return [...found][0];
}
const RESPONSE_TEMPLATE = responseTemplate();

// Every field of the root Query and Mutation types, read from the schema, so
// that a field added there gets its resolver here without a second list.
function rootFields(schemaText) {
  const doc = parse(schemaText);
  const roots = { query: 'Query', mutation: 'Mutation' };
  for (const def of doc.definitions) {
    if (def.kind === Kind.SCHEMA_DEFINITION) {
      for (const op of def.operationTypes) roots[op.operation] = op.type.name.value;
    }
  }
  const wanted = new Set([roots.query, roots.mutation]);
  const fields = [];
  for (const def of doc.definitions) {
    if ((def.kind === Kind.OBJECT_TYPE_DEFINITION || def.kind === Kind.OBJECT_TYPE_EXTENSION) &&
        wanted.has(def.name.value)) {
      for (const f of def.fields || []) fields.push({ typeName: def.name.value, fieldName: f.name.value });
    }
  }
  return fields;
}

class LambdaError extends Error {
  constructor(type, message) {
    super(message);
    this.name = 'LambdaError';
    this.type = type;
  }
}

// The AWS_LAMBDA data source's invoke: POST the event to the emulator.
function lambdaInvoker(lambdaUrl, { timeoutMs = 120000 } = {}) {
  return async function invoke(payload) {
    // The simulator gives identity.sourceIp as one string; AppSync sends a
    // list, and aws_lambda_events' identity types require one.
    const identity = payload && payload.identity;
    if (identity && typeof identity.sourceIp === 'string') identity.sourceIp = [identity.sourceIp];
    let res;
    try {
      res = await fetch(lambdaUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new LambdaError('Lambda:Unhandled', `invoking ${lambdaUrl} failed: ${e.message}`);
    }
    const text = await res.text();
    let body;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch (e) {
      throw new LambdaError('Lambda:Unhandled', `the function answered HTTP ${res.status} with non-JSON: ${text.slice(0, 200)}`);
    }
    if (!res.ok || res.headers.get('x-amz-function-error')) {
      if (body && typeof body === 'object' && (body.errorType || body.errorMessage)) {
        throw new LambdaError(body.errorType || 'Lambda:Unhandled', body.errorMessage || '');
      }
      throw new LambdaError('Lambda:Unhandled', `the function answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    return body;
  };
}

async function startSimulator({ port, wsPort, lambdaUrl, schemaPath = DEFAULT_SCHEMA }) {
  if (!port || !wsPort || !lambdaUrl) throw new Error('startSimulator needs port, wsPort and lambdaUrl');
  const schemaText = fs.readFileSync(schemaPath, 'utf8');
  const fields = rootFields(schemaText);
  if (fields.length === 0) throw new Error(`${schemaPath} has no Query or Mutation fields`);
  const simulator = new AmplifyAppSyncSimulator({ port: Number(port), wsPort: Number(wsPort) });
  simulator.init({
    schema: { path: schemaPath, content: schemaText },
    appSync: {
      name: 'cal-e2e',
      defaultAuthenticationType: {
        authenticationType: Auth.AMAZON_COGNITO_USER_POOLS,
        cognitoUserPoolConfig: {},
      },
      additionalAuthenticationProviders: [{ authenticationType: Auth.AWS_IAM }],
      // IAM: a SigV4 header with this access key id is the `authRoleName` role.
      accountId: '123456789012',
      authAccessKeyId: 'ASIAE2ESERVICE',
      authRoleName: 'assumed-role/order-service/e2e',
      unAuthRoleName: 'assumed-role/unauth/e2e',
    },
    dataSources: [{ type: 'AWS_LAMBDA', name: DATA_SOURCE, invoke: lambdaInvoker(lambdaUrl) }],
    resolvers: fields.map(({ typeName, fieldName }) => ({
      kind: 'UNIT',
      typeName,
      fieldName,
      dataSourceName: DATA_SOURCE,
      requestMappingTemplate: REQUEST_TEMPLATE,
      responseMappingTemplate: RESPONSE_TEMPLATE,
    })),
  });
  await simulator.start();
  return { simulator, url: `http://${LOOPBACK}:${port}/graphql`, fields };
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    out[m[1]] = argv[++i];
  }
  return out;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const { simulator, url, fields } = await startSimulator({
    port: a.port,
    wsPort: a['ws-port'],
    lambdaUrl: a['lambda-url'],
    schemaPath: a.schema || DEFAULT_SCHEMA,
  });
  const stop = () => {
    simulator.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`simulator: ${fields.length} fields resolved by ${a['lambda-url']}`);
  console.log(`simulator: ready ${url}`);
}

module.exports = { startSimulator, rootFields, lambdaInvoker, REQUEST_TEMPLATE, RESPONSE_TEMPLATE };

if (require.main === module) {
  main().catch((e) => {
    console.error(`simulator: ${e.stack || e}`);
    process.exit(1);
  });
}
