// Drives Easel's OpenAI Images API with the official `openai` npm package, as any OpenAI SDK user
// would: only the base URL and the key change.
//   node openai_client_test.mjs http://127.0.0.1:PORT API_KEY
// Talks to the given (loopback) server only. Exits non-zero on the first failed check.
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import OpenAI, { toFile } from 'openai';

const [baseUrl, apiKey] = process.argv.slice(2);
if (!baseUrl || !apiKey) {
  console.error('usage: node openai_client_test.mjs BASE_URL API_KEY');
  process.exit(2);
}
// maxRetries 0: a 429 or 5xx must show here, not be retried away.
const client = new OpenAI({ apiKey, baseURL: `${baseUrl}/v1`, maxRetries: 0, timeout: 600_000 });

// A PNG with an alpha channel: opaque blue-grey, with a transparent square at [x0, x1) x [y0, y1).
function rgbaPng(width, height, hole = [0, 0, 0, 0]) {
  const [x0, y0, x1, y1] = hole;
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const o = y * (width * 4 + 1) + 1 + x * 4;
      const transparent = x >= x0 && x < x1 && y >= y0 && y < y1;
      raw.set([60, 90, 140, transparent ? 0 : 255], o);
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// Width and height from a PNG's IHDR.
function pngSize(buf) {
  assert.equal(buf.subarray(1, 4).toString('ascii'), 'PNG', 'not a PNG');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

async function check(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok  ${name} (${Date.now() - t0} ms)`);
}

await check('models.list names the default model', async () => {
  const models = await client.models.list();
  assert.ok(models.data.length >= 1);
  assert.equal(models.data[0].object, 'model');
});

await check('images.generate: url, then the PNG behind it', async () => {
  const r = await client.images.generate({ model: 'dall-e-2', prompt: 'a red circle on a white background', n: 1, size: '64x64' });
  assert.equal(r.data.length, 1);
  assert.match(r.data[0].url, /\/images\/[A-Za-z0-9_-]+\.png$/);
  const png = Buffer.from(await (await fetch(r.data[0].url)).arrayBuffer());
  assert.deepEqual(pngSize(png), [64, 64]);
});

await check('images.generate: b64_json, two images', async () => {
  const r = await client.images.generate({ prompt: 'a blue square', n: 2, size: '64x64', response_format: 'b64_json' });
  assert.equal(r.data.length, 2);
  for (const d of r.data) assert.deepEqual(pngSize(Buffer.from(d.b64_json, 'base64')), [64, 64]);
  assert.ok(r.created > 0);
});

await check('images.edit: the transparent square is repainted, the rest kept', async () => {
  const image = await toFile(rgbaPng(64, 64, [16, 16, 48, 48]), 'photo.png', { type: 'image/png' });
  const r = await client.images.edit({ image, prompt: 'a green star', n: 1, response_format: 'b64_json' });
  assert.deepEqual(pngSize(Buffer.from(r.data[0].b64_json, 'base64')), [64, 64]);
});

await check('images.edit with a separate mask', async () => {
  const image = await toFile(rgbaPng(64, 64), 'photo.png', { type: 'image/png' });
  const mask = await toFile(rgbaPng(64, 64, [0, 0, 32, 64]), 'mask.png', { type: 'image/png' });
  const r = await client.images.edit({ image, mask, prompt: 'a yellow triangle' });
  assert.equal(r.data.length, 1);
});

await check('images.createVariation keeps the size', async () => {
  const image = await toFile(rgbaPng(64, 48), 'photo.png', { type: 'image/png' });
  const r = await client.images.createVariation({ image, n: 1, response_format: 'b64_json' });
  assert.deepEqual(pngSize(Buffer.from(r.data[0].b64_json, 'base64')), [64, 48]);
});

await check('a bad size is the SDK\'s BadRequestError with param "size"', async () => {
  await assert.rejects(client.images.generate({ prompt: 'x', size: 'huge' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `got ${e.constructor.name}`);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'size');
    return true;
  });
});

await check('an edit without transparency or mask is a BadRequestError on "image"', async () => {
  const image = await toFile(rgbaPng(64, 64), 'opaque.png', { type: 'image/png' });
  await assert.rejects(client.images.edit({ image, prompt: 'x' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `got ${e.constructor.name}`);
    assert.equal(e.param, 'image');
    assert.match(e.message, /transparent/);
    return true;
  });
});

await check('a wrong key is the SDK\'s AuthenticationError', async () => {
  const wrong = new OpenAI({ apiKey: 'not-a-key', baseURL: `${baseUrl}/v1`, maxRetries: 0 });
  await assert.rejects(wrong.images.generate({ prompt: 'x' }), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e.constructor.name}`);
    assert.equal(e.code, 'invalid_api_key');
    return true;
  });
});

console.log('all OpenAI client checks passed');
