#!/usr/bin/env node
// Renders chat-template test cases with @huggingface/jinja (the engine transformers.js uses),
// producing the expected outputs that fastgen's chat_template_test compares against.
//
// Usage:
//   node scripts/render_chat_templates.mjs [--node-modules DIR] CASES.json [OUT.json]
//
// DIR is the node_modules folder holding @huggingface/jinja, e.g. after
//   npm install --prefix build/npm @huggingface/jinja
// pass build/npm/node_modules (default: $FASTGEN_NODE_MODULES, else the normal Node lookup).
//
// CASES.json: {"cases": [{"id", "template", "messages", "add_generation_prompt", "bos_token",
//                         "eos_token", "extra_context"}]}
// Output (to OUT.json, or stdout): {"jinja_version", "results": [{"id", "ok": true, "output"} |
//                                                                 {"id", "ok": false, "error"}]}
// The render context is {messages, add_generation_prompt, bos_token, eos_token, ...extra_context},
// the same context fastgen's RenderChatTemplate builds.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

function fail(message) {
  process.stderr.write(`render_chat_templates: ${message}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let modulesDir = process.env.FASTGEN_NODE_MODULES || "";
const positional = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--node-modules") {
    if (i + 1 >= args.length) fail("--node-modules needs a directory");
    modulesDir = args[++i];
  } else {
    positional.push(args[i]);
  }
}
if (positional.length < 1 || positional.length > 2) {
  fail("usage: render_chat_templates.mjs [--node-modules DIR] CASES.json [OUT.json]");
}

// Resolve the package from DIR when given (createRequire resolves relative to a file inside it).
const require = createRequire(
  modulesDir ? path.join(path.resolve(modulesDir), "_resolve_from_here.js") : import.meta.url,
);
let jinja;
let version = "unknown";
try {
  const mainPath = require.resolve("@huggingface/jinja");
  jinja = require(mainPath);
  // The package's exports map hides package.json; find it next to the resolved entry point.
  for (let dir = path.dirname(mainPath); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, "package.json");
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, "utf8"));
      if (pkg.name === "@huggingface/jinja") {
        version = pkg.version;
        break;
      }
    }
  }
} catch (e) {
  fail(`cannot load @huggingface/jinja (${e.message}); run: npm install --prefix <build>/npm @huggingface/jinja`);
}

const input = JSON.parse(fs.readFileSync(positional[0], "utf8"));
if (!Array.isArray(input.cases)) fail("CASES.json must hold {\"cases\": [...]}");

const results = input.cases.map((c) => {
  try {
    const template = new jinja.Template(c.template);
    const output = template.render({
      messages: c.messages,
      add_generation_prompt: c.add_generation_prompt,
      bos_token: c.bos_token,
      eos_token: c.eos_token,
      ...(c.extra_context || {}),
    });
    return { id: c.id, ok: true, output };
  } catch (e) {
    return { id: c.id, ok: false, error: String(e && e.message !== undefined ? e.message : e) };
  }
});

const text = JSON.stringify({ jinja_version: version, results }, null, 1);
if (positional.length === 2) {
  fs.writeFileSync(positional[1], text);
} else {
  process.stdout.write(text + "\n");
}
