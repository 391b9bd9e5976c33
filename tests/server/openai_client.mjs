// End-to-end checks of `fastgen serve` through the official `openai` npm client, as applications
// call it. Usage: node openai_client.mjs BASE_URL API_KEY MODEL. Exits 0 when every check passes;
// otherwise prints the first failure and exits 1.
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
let checks = 0;

function check(cond, what, detail) {
  checks++;
  if (!cond) {
    console.error(`FAILED: ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
    process.exit(1);
  }
}

async function expectError(promise, status, param, what) {
  try {
    await promise;
    check(false, `${what}: expected HTTP ${status}, got success`);
  } catch (e) {
    check(e instanceof OpenAI.APIError, `${what}: an APIError`, String(e));
    check(e.status === status, `${what}: status`, e.status);
    if (param !== undefined) check(e.param === param, `${what}: param`, e.param);
  }
}

const prompt = 'def fibonacci(n):\n';

// Models.
const models = await client.models.list();
check(models.data.some((m) => m.id === model), 'models.list names the served model', models.data);

// Completions: plain, then streamed with usage; greedy, so the texts agree.
const plain = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
check(plain.object === 'text_completion', 'completion object', plain.object);
check(plain.choices.length === 1 && plain.choices[0].text.length > 0, 'completion text', plain.choices);
check(plain.choices[0].finish_reason === 'length', 'finish_reason length', plain.choices[0].finish_reason);
check(plain.usage.completion_tokens === 24 && plain.usage.prompt_tokens > 0, 'completion usage', plain.usage);

const stream = await client.completions.create({
  model, prompt, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let streamed = '';
let usage = null;
let finish = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    streamed += c.text;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
check(streamed === plain.choices[0].text, 'streamed completion equals the plain one', { streamed, plain: plain.choices[0].text });
check(finish === 'length', 'streamed finish_reason', finish);
check(usage && usage.completion_tokens === 24, 'stream_options.include_usage', usage);

// Stop strings: the text ends before the stop string, finish_reason "stop".
const text = plain.choices[0].text;
const stop = text.slice(5, 9);
const stopped = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, stop: [stop] });
check(stopped.choices[0].text === text.slice(0, text.indexOf(stop)), 'stop string cuts the text', { got: stopped.choices[0].text, stop });
check(stopped.choices[0].finish_reason === 'stop', 'finish_reason stop', stopped.choices[0].finish_reason);

// n choices: greedy choices agree; sampled ones with a seed are reproducible.
const two = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, n: 2 });
check(two.choices.length === 2 && two.choices[0].text === two.choices[1].text, 'n=2 greedy choices agree', two.choices);
check(two.usage.completion_tokens === 24, 'n=2 usage counts both choices', two.usage);
const s1 = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 1, seed: 42, n: 2 });
const s2 = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 1, seed: 42, n: 2 });
check(s1.choices[0].text === s2.choices[0].text && s1.choices[1].text === s2.choices[1].text, 'seeded sampling is reproducible');

// Legacy completion logprobs.
const lp = await client.completions.create({ model, prompt, max_tokens: 5, temperature: 0, logprobs: 2 });
const l = lp.choices[0].logprobs;
check(l && l.tokens.length === 5 && l.token_logprobs.length === 5 && l.top_logprobs.length === 5, 'completion logprobs', l);
check(l.token_logprobs.every((x) => x <= 0), 'logprobs are <= 0', l.token_logprobs);

// Chat: plain, streamed, logprobs.
const messages = [{ role: 'system', content: 'You write Python.' }, { role: 'user', content: 'def add(a, b):' }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0 });
check(chat.object === 'chat.completion', 'chat object', chat.object);
check(chat.choices[0].message.role === 'assistant' && typeof chat.choices[0].message.content === 'string', 'chat message', chat.choices[0]);
check(chat.usage.completion_tokens > 0, 'chat usage', chat.usage);
const chatStream = await client.chat.completions.create({
  model, messages, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let chatText = '';
let role = null;
let chatUsage = null;
for await (const chunk of chatStream) {
  if (chunk.usage) chatUsage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) chatText += c.delta.content;
  }
}
check(role === 'assistant', 'chat stream announces the role', role);
check(chatText === chat.choices[0].message.content, 'streamed chat equals the plain one', { chatText, plain: chat.choices[0].message.content });
check(chatUsage && chatUsage.completion_tokens === chat.usage.completion_tokens, 'chat stream usage', chatUsage);
const chatLp = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
const content = chatLp.choices[0].logprobs.content;
check(content.length === chatLp.usage.completion_tokens, 'chat logprobs, one per token', content.length);
check(content.every((e) => e.top_logprobs.length === 3 && e.logprob <= 0 && Array.isArray(e.bytes)), 'chat logprob entries', content[0]);

// Errors, as the client raises them.
await expectError(client.completions.create({ model, prompt, temperature: 5 }), 400, 'temperature', 'temperature out of range');
await expectError(client.completions.create({ model, prompt, max_tokens: -3 }), 400, 'max_tokens', 'negative max_tokens');
await expectError(client.completions.create({ model: 'no-such-model', prompt }), 400, 'model', 'unknown model');
await expectError(client.completions.create({ model, prompt: 'hello world, '.repeat(3000), max_tokens: 4 }), 400, 'prompt', 'prompt past the context');
await expectError(client.chat.completions.create({ model, messages: [{ role: 'wizard', content: 'hi' }] }), 400, 'messages', 'bad role');
const wrongKey = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
await expectError(wrongKey.models.list(), 401, undefined, 'wrong API key');

console.log(`ok: ${checks} checks`);
