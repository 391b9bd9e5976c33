// Structured output through the official `openai` npm client, checked by a real JSON Schema
// validator (Ajv): every completed answer to a response_format json_schema request must parse
// and validate, sampled at temperature 1 with many seeds, streamed and not.
// Usage: node structured_output.mjs BASE_URL MODEL. Exits 0 when every check passes.
import OpenAI from 'openai';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0, timeout: 300000 });
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
let checks = 0;

function check(cond, what, detail) {
  checks++;
  if (!cond) {
    console.error(`FAILED: ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
    process.exit(1);
  }
}

const schemas = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 130 },
      role: { enum: ['admin', 'user', 'guest'] },
      active: { type: 'boolean' },
      scores: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 3 },
    },
    required: ['name', 'age', 'role'],
    additionalProperties: false,
  },
  tree: {
    $defs: {
      node: {
        type: 'object',
        properties: {
          id: { type: 'integer', minimum: -5, maximum: 5 },
          children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 },
        },
        required: ['id'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  },
  mixed: {
    type: 'object',
    properties: {
      code: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{2}$' },
      when: { type: 'string', format: 'date' },
      id: { type: 'string', format: 'uuid' },
      note: { anyOf: [{ type: 'string', maxLength: 8 }, { type: 'null' }] },
      ratio: { type: 'number', minimum: 0, maximum: 1 },
    },
    required: ['code', 'when', 'id', 'note'],
    additionalProperties: false,
  },
};

let completed = 0, truncated = 0;
function validate(name, text, finish) {
  if (finish !== 'stop') {  // cut by max_tokens: incomplete by design, nothing to validate
    check(finish === 'length', `${name}: finish_reason`, finish);
    if (process.env.FASTGEN_SHOW_TRUNCATED) console.log(`${name} cut: ${JSON.stringify(text.slice(0, 300))}`);
    truncated++;
    return;
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    check(false, `${name}: the answer parses as JSON`, text);
  }
  const ok = ajv.validate(schemas[name], value);
  check(ok, `${name}: the answer validates`, { text, errors: ajv.errors });
  completed++;
}

const messages = [{ role: 'user', content: 'Answer in JSON.' }];
for (const name of Object.keys(schemas)) {
  const response_format = { type: 'json_schema', json_schema: { name, schema: schemas[name], strict: true } };
  for (let seed = 1; seed <= 3; seed++) {
    const r = await client.chat.completions.create({ model, messages, response_format, temperature: 1, seed,
                                                     max_tokens: 400, n: 2 });
    for (const c of r.choices) validate(name, c.message.content, c.finish_reason);
  }
  // Streamed: the deltas join into the same kind of answer.
  const stream = await client.chat.completions.create({ model, messages, response_format, temperature: 1, seed: 9,
                                                        max_tokens: 400, stream: true });
  let text = '', finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.delta?.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  validate(name, text, finish);
}

// json_object: any object.
for (let seed = 1; seed <= 3; seed++) {
  const r = await client.chat.completions.create({ model, messages, response_format: { type: 'json_object' },
                                                   temperature: 1, seed, max_tokens: 300 });
  const c = r.choices[0];
  if (c.finish_reason === 'stop') {
    const v = JSON.parse(c.message.content);
    check(typeof v === 'object' && v !== null && !Array.isArray(v), 'json_object: an object', c.message.content);
    completed++;
  } else {
    truncated++;
  }
}

// A GBNF grammar (llama.cpp's `grammar` request field) on the completions endpoint.
const g = await client.completions.create({ model, prompt: 'x', max_tokens: 40, temperature: 1, seed: 5,
                                            grammar: 'root ::= ("yes" | "no") ", " [0-9]{2}' });
check(/^(yes|no), [0-9]{2}$/.test(g.choices[0].text) && g.choices[0].finish_reason === 'stop', 'grammar output',
      g.choices[0]);

// Tool calls: forced ("required" or a named function) calls are generated under the tools'
// parameter schemas, returned as tool_calls (streamed as deltas), and round-trip as history.
const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, unit: { enum: ['C', 'F'] } },
                  required: ['city'], additionalProperties: false } } },
  { type: 'function', function: { name: 'add', description: 'Adds two integers',
    parameters: { type: 'object', properties: { a: { type: 'integer', minimum: -100, maximum: 100 },
                                                b: { type: 'integer', minimum: -100, maximum: 100 } },
                  required: ['a', 'b'] } } },
];
const params = Object.fromEntries(tools.map((t) => [t.function.name, t.function.parameters]));
function checkCalls(what, calls, only) {
  check(Array.isArray(calls) && calls.length >= 1, `${what}: tool_calls`, calls);
  for (const call of calls) {
    check(call.type === 'function' && typeof call.id === 'string' && call.id.length > 0, `${what}: call shape`, call);
    const name = call.function.name;
    check(name in params && (!only || name === only), `${what}: a known tool`, call);
    const args = JSON.parse(call.function.arguments);
    check(ajv.validate(params[name], args), `${what}: arguments validate`, { call, errors: ajv.errors });
  }
}
const ask = [{ role: 'user', content: 'What is the weather in Paris, and what is 2 + 3?' }];
let lastCall = null;
for (let seed = 1; seed <= 3; seed++) {
  const r = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: 'required', temperature: 1,
                                                   seed, max_tokens: 200, parallel_tool_calls: false });
  const c = r.choices[0];
  check(c.finish_reason === 'tool_calls', 'required: finish_reason', c);
  check(c.message.tool_calls.length === 1, 'required without parallel calls: one call', c.message);
  checkCalls('required', c.message.tool_calls);
  lastCall = c.message.tool_calls[0];
  const named = await client.chat.completions.create({ model, messages: ask, tools, temperature: 1, seed,
      tool_choice: { type: 'function', function: { name: 'add' } }, max_tokens: 200, parallel_tool_calls: false });
  check(named.choices[0].finish_reason === 'tool_calls', 'named: finish_reason', named.choices[0]);
  checkCalls('named', named.choices[0].message.tool_calls, 'add');
}
{
  // Streamed: the calls arrive as tool_calls deltas, which the client's accumulation reads: each
  // call's id and name once, then its arguments in pieces as the model writes them.
  const stream = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: 'required',
                                                        temperature: 1, seed: 4, max_tokens: 300, stream: true });
  const calls = [];
  let finish = null, argumentPieces = 0, headers = 0;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      for (const d of c.delta?.tool_calls ?? []) {
        calls[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
        if (d.id) {
          check(calls[d.index].id === '', 'streamed: one id per call', d);
          calls[d.index].id = d.id;
          ++headers;
        }
        if (d.function?.name) calls[d.index].function.name += d.function.name;
        if (d.function?.arguments) {
          calls[d.index].function.arguments += d.function.arguments;
          ++argumentPieces;
        }
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  if (finish === 'tool_calls') {
    checkCalls('streamed', calls);
    check(argumentPieces > headers, 'streamed: arguments in pieces, not whole', { argumentPieces, headers });
  } else {
    check(finish === 'length', 'streamed: finish_reason', finish);
  }
}
{
  // The call and its result as history, then the model's turn (auto: text or more calls).
  const history = [...ask, { role: 'assistant', content: null, tool_calls: [lastCall] },
                   { role: 'tool', tool_call_id: lastCall.id, content: '{"result": 22}' }];
  const r = await client.chat.completions.create({ model, messages: history, tools, temperature: 0, max_tokens: 16 });
  const c = r.choices[0];
  check(['stop', 'length', 'tool_calls'].includes(c.finish_reason), 'round trip: an answer', c);
  check(typeof c.message.content === 'string' || Array.isArray(c.message.tool_calls), 'round trip: text or calls', c.message);
  let threw = false;
  try {
    await client.chat.completions.create({ model, messages: ask, tools,
                                           tool_choice: { type: 'function', function: { name: 'nope' } } });
  } catch (e) {
    threw = e instanceof OpenAI.APIError && e.status === 400 && e.param === 'tool_choice';
  }
  check(threw, 'an unknown tool_choice is a 400 naming tool_choice');
}

// Most answers complete within max_tokens (the test is void otherwise).
check(completed >= 2 * truncated && completed >= 16, 'answers completed', { completed, truncated });
console.log(`ok: ${checks} checks, ${completed} answers validated, ${truncated} cut by max_tokens`);
