'use strict';
// A gRPC client framing messages by hand over Node's http2 (no gRPC library): the 5-byte
// prefix (flag 0, big-endian length) on requests, parsed back out of responses, status read
// from trailers or from a trailers-only response. Runs against h2peer's test.Echo service.
//   node grpc_client.js HOST:PORT CERTDIR NAME EXPECTED_SERVER_ID
const http2 = require('http2');
const tls = require('tls');
const { creds, spiffeCheck, pattern, fail, deadline } = require('./common');

const [addr, dir, name, expected] = process.argv.slice(2);
if (!expected) fail('usage: grpc_client.js HOST:PORT CERTDIR NAME EXPECTED_ID');
const host = addr.slice(0, addr.lastIndexOf(':'));
const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
process.exitCode = 1;
deadline(15000, 'gRPC calls');

function frame(payload) {
	const prefix = Buffer.alloc(5);
	prefix.writeUInt32BE(payload.length, 1);
	return Buffer.concat([prefix, payload]);
}

// Splits a response body into messages; throws on a compressed flag or a cut message.
function unframe(body) {
	const out = [];
	let o = 0;
	while (o < body.length) {
		if (body.length - o < 5) throw new Error(`body ends inside a prefix at ${o}`);
		if (body[o] !== 0) throw new Error(`message flag ${body[o]}`);
		const len = body.readUInt32BE(o + 1);
		if (body.length - o - 5 < len) throw new Error(`body ends inside a ${len}-byte message`);
		out.push(body.subarray(o + 5, o + 5 + len));
		o += 5 + len;
	}
	return out;
}

function call(client, path, messages, extra = {}) {
	return new Promise((resolve, reject) => {
		const req = client.request({
			':method': 'POST',
			':scheme': 'https',
			':path': path,
			':authority': 'test.echo:443',
			'content-type': 'application/grpc',
			te: 'trailers',
			...extra,
		});
		const chunks = [];
		let headers = {}, trailers = null;
		req.on('response', (h) => (headers = h));
		req.on('trailers', (t) => (trailers = t));
		req.on('data', (c) => chunks.push(c));
		req.on('error', reject);
		req.on('close', () => {
			// Trailers-only responses carry the status in the response headers.
			const st = trailers || headers;
			resolve({
				http: headers[':status'],
				ctype: headers['content-type'],
				code: st['grpc-status'] === undefined ? undefined : Number(st['grpc-status']),
				message: st['grpc-message'],
				trailersOnly: trailers === null,
				body: Buffer.concat(chunks),
				rst: req.rstCode,
			});
		});
		req.end(Buffer.concat(messages.map(frame)));
	});
}

function expectEqual(what, got, want) {
	if (got !== want) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

async function main() {
	const client = http2.connect(`https://${addr}`, {
		createConnection: () =>
			tls.connect({
				host,
				port,
				...creds(dir, name),
				ALPNProtocols: ['h2'],
				rejectUnauthorized: true,
				checkServerIdentity: spiffeCheck(expected, {}),
			}),
	});
	client.on('error', (e) => fail(`session: ${e.message}`));
	const auth = { authorization: 'Bearer test-token' };

	// Unary, small and then spanning several DATA frames.
	const big = Buffer.alloc(100000);
	for (let i = 0; i < big.length; i++) big[i] = pattern(i);
	for (const payload of [Buffer.from('hello from node'), Buffer.alloc(0), big]) {
		const r = await call(client, '/test.Echo/Unary', [payload], auth);
		expectEqual('unary http status', r.http, 200);
		expectEqual('unary content-type', r.ctype, 'application/grpc');
		expectEqual('unary grpc-status', r.code, 0);
		expectEqual('unary status in trailers', r.trailersOnly, false);
		const msgs = unframe(r.body);
		expectEqual('unary message count', msgs.length, 1);
		if (!msgs[0].equals(payload)) fail(`unary echo of ${payload.length} bytes differs`);
		console.log(`unary ${payload.length} bytes: OK, echoed`);
	}

	// A bidirectional stream, all messages in one request body, then half-close.
	const sentMsgs = ['one', '', 'three', 'x'.repeat(20000)].map((s) => Buffer.from(s));
	const s = await call(client, '/test.Echo/Stream', sentMsgs);
	expectEqual('stream grpc-status', s.code, 0);
	expectEqual('stream grpc-message', s.message, 'bye');
	const echoed = unframe(s.body);
	expectEqual('stream message count', echoed.length, sentMsgs.length);
	sentMsgs.forEach((m, i) => {
		if (!echoed[i].equals(m)) fail(`stream message ${i} differs`);
	});
	console.log(`stream of ${sentMsgs.length} messages: OK "bye"`);

	const noauth = await call(client, '/test.Echo/Unary', [Buffer.from('hi')]);
	expectEqual('no token http status', noauth.http, 200);
	expectEqual('no token grpc-status', noauth.code, 16);
	expectEqual('no token body', noauth.body.length, 0);
	console.log(`no token: UNAUTHENTICATED (${noauth.message})`);

	const badtoken = await call(client, '/test.Echo/Unary', [Buffer.from('hi')], {
		authorization: 'Bearer wrong-token',
	});
	expectEqual('wrong token grpc-status', badtoken.code, 16);
	console.log('wrong token: UNAUTHENTICATED');

	const unknown = await call(client, '/test.Echo/Nope', [Buffer.from('hi')], auth);
	expectEqual('unknown method http status', unknown.http, 200);
	expectEqual('unknown method grpc-status', unknown.code, 12);
	console.log(`unknown method: UNIMPLEMENTED (${unknown.message})`);

	const proto = await call(client, '/test.Echo/Unary', [Buffer.from('hi')], {
		...auth,
		'content-type': 'application/grpc+proto',
	});
	expectEqual('application/grpc+proto grpc-status', proto.code, 0);
	console.log('application/grpc+proto: OK');

	// gRPC-Web frames differently (base64 in -text): it must not pass for gRPC.
	for (const ctype of ['application/grpc-web', 'application/grpc-web-text', 'application/grpcx']) {
		const web = await call(client, '/test.Echo/Unary', [Buffer.from('hi')], {
			...auth,
			'content-type': ctype,
		});
		expectEqual(`${ctype} http status`, web.http, 415);
	}
	console.log('gRPC-Web and other look-alike content types: HTTP 415');

	const plain = await call(client, '/test.Echo/Unary', [Buffer.from('hi')], {
		...auth,
		'content-type': 'text/plain',
	});
	expectEqual('non-gRPC content-type http status', plain.http, 415);
	console.log('non-gRPC content-type: HTTP 415');

	client.close(() => {
		console.log('ok');
		process.exitCode = 0;
	});
}

main().catch((e) => fail(e.stack || String(e)));
