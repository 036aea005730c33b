'use strict';
// An HBONE client written only against Node's http2/tls: mutual TLS 1.3 with ALPN h2 and no
// SNI, the server's SPIFFE identity checked by URI SAN, one CONNECT stream carrying BYTES of
// a pattern, half-closed, with the echo verified byte for byte.
//   node hbone_client.js HOST:PORT CERTDIR NAME EXPECTED_SERVER_ID BYTES
const http2 = require('http2');
const tls = require('tls');
const { creds, spiffeCheck, pattern, fail, deadline } = require('./common');

const [addr, dir, name, expected, bytesArg] = process.argv.slice(2);
if (!bytesArg) fail('usage: hbone_client.js HOST:PORT CERTDIR NAME EXPECTED_ID BYTES');
const total = Number(bytesArg);
const host = addr.slice(0, addr.lastIndexOf(':'));
const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
const seen = {};
process.exitCode = 1;
deadline(20000, 'CONNECT echo');

const client = http2.connect(`https://${addr}`, {
	// Our own TLS socket: http2.connect would otherwise send the IP address as SNI.
	createConnection: () =>
		tls.connect({
			host,
			port,
			...creds(dir, name),
			ALPNProtocols: ['h2'],
			minVersion: 'TLSv1.3',
			rejectUnauthorized: true,
			checkServerIdentity: spiffeCheck(expected, seen),
		}),
});
client.on('error', (e) => fail(`session: ${e.message}`));
client.on('connect', (session, socket) => {
	console.log(`connected: ${socket.getProtocol()} alpn=${session.alpnProtocol} server=${seen.ids}`);
	if (socket.getProtocol() !== 'TLSv1.3' || session.alpnProtocol !== 'h2')
		fail('expected TLS 1.3 with h2');
});

// AUTHORITY=ip:port sets the CONNECT target (default: the loopback echo peers' 127.0.0.1:8080).
const authority = process.env.AUTHORITY || '127.0.0.1:8080';
const req = client.request({ ':method': 'CONNECT', ':authority': authority });
let status = 0, sent = 0, recvd = 0, badAt = -1, ended = false;

function pump() {
	while (sent < total) {
		const n = Math.min(65536, total - sent);
		const b = Buffer.allocUnsafe(n);
		for (let j = 0; j < n; j++) b[j] = pattern(sent + j);
		sent += n;
		if (!req.write(b)) {
			req.once('drain', pump);
			return;
		}
	}
	req.end(); // half-close: the echo must still come back in full
}

req.on('response', (h) => {
	status = h[':status'];
	if (status !== 200) fail(`CONNECT answered ${status}`);
	pump();
});
req.on('data', (chunk) => {
	for (let j = 0; j < chunk.length && badAt < 0; j++)
		if (chunk[j] !== pattern(recvd + j)) badAt = recvd + j;
	recvd += chunk.length;
});
req.on('end', () => {
	ended = true;
});
req.on('error', (e) => fail(`stream: ${e.message}`));
req.on('close', () => {
	console.log(`status=${status} sent=${sent} echoed=${recvd} ended=${ended} rst=${req.rstCode}`);
	if (!seen.ids) fail('server identity was never checked');
	if (badAt >= 0) fail(`echo differs at byte ${badAt}`);
	if (recvd !== total) fail(`echoed ${recvd} of ${total} bytes`);
	if (!ended) fail('echo did not end with END_STREAM');
	if (req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) fail(`stream reset ${req.rstCode}`);
	client.close(() => {
		console.log('ok');
		process.exitCode = 0;
	});
});
