#!/usr/bin/env node
// A loopback proxy in front of s3rver that checks AWS Signature Version 4 as S3 does, since s3rver
// accepts any v4 signature. Every request must carry a valid signature, in the Authorization header
// (the payload hash in x-amz-content-sha256 checked against the body) or in a pre-signed URL's query
// (not expired); anything else is answered 403 with S3's XML error, the canonical request and string to
// sign we computed included (as S3 does), and never reaches s3rver.
//
// usage: node sigv4-check.js --port P --upstream UPSTREAM_PORT --key ACCESS_KEY:SECRET_KEY
//        [--max-skew-seconds 900]

'use strict';

const crypto = require('crypto');
const http = require('http');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  if (at < 0 || at + 1 >= process.argv.length) {
    if (fallback === undefined) {
      console.error(`sigv4-check: ${name} is required`);
      process.exit(2);
    }
    return fallback;
  }
  return process.argv[at + 1];
}

const port = Number(option('--port'));
const upstream = Number(option('--upstream'));
const [accessKey, secretKey] = option('--key').split(':');
const maxSkewSeconds = Number(option('--max-skew-seconds', '900'));

// RFC 3986 encoding of everything but the unreserved characters, as SigV4 wants it.
function strictEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function decode(text) {
  return decodeURIComponent(text.replace(/\+/g, '%20'));
}

function sha256Hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data).digest();
}

// S3 takes the path as sent, decodes each segment and encodes it again (no normalisation).
function canonicalUri(rawPath) {
  return rawPath.split('/').map((segment) => strictEncode(decode(segment))).join('/');
}

function canonicalQuery(rawQuery, leaveOut) {
  if (!rawQuery) return '';
  const pairs = rawQuery.split('&').filter((p) => p.length > 0).map((p) => {
    const eq = p.indexOf('=');
    const key = decode(eq < 0 ? p : p.slice(0, eq));
    const value = eq < 0 ? '' : decode(p.slice(eq + 1));
    return [strictEncode(key), strictEncode(value)];
  }).filter(([key]) => key !== leaveOut);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function canonicalHeaders(req, signedHeaders) {
  return signedHeaders.map((name) => {
    const value = req.headers[name];
    if (value === undefined) throw new Refusal('AccessDenied', `the signed header ${name} is missing`);
    const text = Array.isArray(value) ? value.join(',') : String(value);
    return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
  }).join('');
}

class Refusal extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

// "20261206T083000Z" -> seconds since the epoch.
function amzSeconds(amzDate) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate || '');
  if (!m) throw new Refusal('AccessDenied', `X-Amz-Date ${amzDate} is not an ISO 8601 basic date`);
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000;
}

// What the request says it was signed with, and what it signed.
function signedParts(req, rawPath, rawQuery, body) {
  const auth = req.headers.authorization;
  const query = new URLSearchParams(rawQuery || '');
  if (auth) {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new Refusal('AccessDenied', 'the Authorization header is not AWS4-HMAC-SHA256');
    const payloadHash = req.headers['x-amz-content-sha256'];
    if (!payloadHash) throw new Refusal('InvalidRequest', 'x-amz-content-sha256 is required with SigV4');
    if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256Hex(body)) {
      throw new Refusal('XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        { ClientComputedContentSHA256: payloadHash, S3ComputedContentSHA256: sha256Hex(body) });
    }
    const date = req.headers['x-amz-date'];
    if (Math.abs(Date.now() / 1000 - amzSeconds(date)) > maxSkewSeconds) {
      throw new Refusal('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
    }
    return {
      credential: m[1], signedHeaders: m[2].split(';'), signature: m[3], date,
      query: canonicalQuery(rawQuery), payloadHash,
    };
  }
  if (query.get('X-Amz-Algorithm') === 'AWS4-HMAC-SHA256') {
    const date = query.get('X-Amz-Date');
    const expires = Number(query.get('X-Amz-Expires'));
    if (!(expires >= 1 && expires <= 604800)) throw new Refusal('AuthorizationQueryParametersError', 'X-Amz-Expires must be 1 to 604800');
    const signed = amzSeconds(date);
    const now = Date.now() / 1000;
    if (now > signed + expires) throw new Refusal('AccessDenied', 'Request has expired');
    if (signed - now > maxSkewSeconds) throw new Refusal('AccessDenied', 'Request is not valid yet');
    return {
      credential: query.get('X-Amz-Credential') || '', signedHeaders: (query.get('X-Amz-SignedHeaders') || '').split(';'),
      signature: query.get('X-Amz-Signature') || '', date,
      query: canonicalQuery(rawQuery, 'X-Amz-Signature'), payloadHash: 'UNSIGNED-PAYLOAD',
    };
  }
  throw new Refusal('AccessDenied', 'Access Denied (the request is not signed)');
}

function check(req, body) {
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const parts = signedParts(req, rawPath, rawQuery, body);
  const [keyId, day, region, service, terminal] = parts.credential.split('/');
  if (keyId !== accessKey) {
    throw new Refusal('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  if (service !== 's3' || terminal !== 'aws4_request' || !region || day !== (parts.date || '').slice(0, 8)) {
    throw new Refusal('AuthorizationHeaderMalformed', `the credential scope ${parts.credential} is malformed`);
  }
  if (!parts.signedHeaders.includes('host')) throw new Refusal('AccessDenied', 'the host header must be signed');
  const canonicalRequest = [req.method, canonicalUri(rawPath), parts.query, canonicalHeaders(req, parts.signedHeaders),
    parts.signedHeaders.join(';'), parts.payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', parts.date, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + secretKey, day), region), service), 'aws4_request');
  const expected = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
  const given = Buffer.from(parts.signature);
  if (given.length !== 64 || !crypto.timingSafeEqual(Buffer.from(expected), given)) {
    throw new Refusal('SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { CanonicalRequest: canonicalRequest, StringToSign: stringToSign });
  }
}

function escapeXml(text) {
  return String(text).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]));
}

function refuse(res, method, refusal) {
  const status = refusal.code === 'InvalidRequest' || refusal.code === 'AuthorizationHeaderMalformed' ||
    refusal.code === 'XAmzContentSHA256Mismatch' || refusal.code === 'AuthorizationQueryParametersError' ? 400 : 403;
  const details = Object.entries(refusal.details).map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`).join('');
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${refusal.code}</Code>` +
    `<Message>${escapeXml(refusal.message)}</Message>${details}</Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(xml) });
  res.end(method === 'HEAD' ? undefined : xml);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    try {
      check(req, body);
    } catch (e) {
      if (e instanceof Refusal) return refuse(res, req.method, e);
      return refuse(res, req.method, new Refusal('AccessDenied', `the request could not be checked: ${e.message}`));
    }
    const headers = { ...req.headers, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const forward = http.request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    forward.on('error', (e) => {
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`s3rver: ${e.message}`);
    });
    forward.end(body);
  });
});
server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1');
