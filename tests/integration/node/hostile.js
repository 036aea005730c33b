'use strict';
// Hostile clients against our HBONE server, on raw Node TLS sockets:
//   garbage   valid mTLS with ALPN h2, then bytes that are not the HTTP/2 preface: the server
//             must close the connection.
//   badframe  the real preface and SETTINGS, then DATA on stream 0 (a connection error): the
//             server must answer GOAWAY(PROTOCOL_ERROR) and close.
//   noalpn    no ALPN extension at all: the handshake must be refused.
//   http11    ALPN offering only http/1.1: the handshake must be refused.
//   node hostile.js MODE HOST:PORT CERTDIR NAME EXPECTED_SERVER_ID
const tls = require('tls');
const { creds, spiffeCheck, fail, deadline } = require('./common');

const [mode, addr, dir, name, expected] = process.argv.slice(2);
if (!expected) fail('usage: hostile.js MODE HOST:PORT CERTDIR NAME EXPECTED_ID');
const host = addr.slice(0, addr.lastIndexOf(':'));
const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
process.exitCode = 1;
deadline(10000, mode);

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function frameHeader(len, type, flags, stream) {
	const h = Buffer.alloc(9);
	h.writeUIntBE(len, 0, 3);
	h[3] = type;
	h[4] = flags;
	h.writeUInt32BE(stream, 5);
	return h;
}

// Frames in what the server sent: [{type, payload}], ignoring a cut last frame.
function frames(buf) {
	const out = [];
	for (let o = 0; buf.length - o >= 9; ) {
		const len = buf.readUIntBE(o, 3);
		if (buf.length - o - 9 < len) break;
		out.push({ type: buf[o + 3], payload: buf.subarray(o + 9, o + 9 + len) });
		o += 9 + len;
	}
	return out;
}

// Valid client credentials; the server's chain and SPIFFE identity are checked as usual.
function tlsOptions(alpn) {
	const opts = {
		host,
		port,
		...creds(dir, name),
		rejectUnauthorized: true,
		checkServerIdentity: spiffeCheck(expected, {}),
	};
	if (alpn) opts.ALPNProtocols = alpn;
	return opts;
}

function refusedHandshake(alpn) {
	const s = tls.connect(tlsOptions(alpn));
	s.on('secureConnect', () =>
		fail(`handshake completed (alpn=${s.alpnProtocol}) without h2 offered`));
	s.on('error', (e) => {
		console.log(`refused: ${e.code} ${e.message.trim()}`);
		if (!/no.application.protocol/i.test(`${e.code} ${e.message}`))
			fail(`refused for another reason than ALPN: ${e.message}`);
		process.exitCode = 0;
	});
}

// Connects with ALPN h2, sends payload, expects the server to hang up on its own.
function closedByServer(payload, check) {
	const s = tls.connect(tlsOptions(['h2']));
	const got = [];
	let weClosed = false, secured = false;
	s.on('secureConnect', () => {
		secured = true;
		if (s.alpnProtocol !== 'h2') fail(`alpn ${s.alpnProtocol}`);
		s.write(payload);
	});
	s.on('data', (c) => got.push(c));
	// A reset instead of a FIN also counts as the server hanging up.
	s.on('error', (e) => console.log(`socket error: ${e.code || e.message}`));
	s.on('close', () => {
		if (weClosed) return;
		if (!secured) fail('the TLS handshake itself failed; nothing was tested');
		const fr = frames(Buffer.concat(got));
		const types = fr.map((f) => f.type).join(',');
		console.log(`server closed the connection after sending frame types [${types}]`);
		check(fr);
		process.exitCode = 0;
	});
	// The server must not wait for us: we never close first.
	setTimeout(() => {
		weClosed = true;
		s.destroy();
		fail('server kept the connection open');
	}, 5000).unref();
}

switch (mode) {
case 'garbage':
	closedByServer(
		Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + '\x00\xff'.repeat(64), 'latin1'),
		() => {},
	);
	break;
case 'badframe':
	closedByServer(
		// SETTINGS (empty), then DATA on stream 0.
		Buffer.concat([
			PREFACE,
			frameHeader(0, 4, 0, 0),
			frameHeader(4, 0, 0, 0),
			Buffer.from('oops'),
		]),
		(fr) => {
			const ga = fr.find((f) => f.type === 7);
			if (!ga) fail('no GOAWAY before close');
			const code = ga.payload.readUInt32BE(4);
			console.log(`GOAWAY error code ${code}`);
			if (code !== 1) fail(`GOAWAY code ${code}, want PROTOCOL_ERROR (1)`);
		},
	);
	break;
case 'noalpn':
	refusedHandshake(null);
	break;
case 'http11':
	refusedHandshake(['http/1.1']);
	break;
default:
	fail(`unknown mode ${mode}`);
}
