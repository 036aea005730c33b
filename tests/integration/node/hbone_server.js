'use strict';
// An HBONE server written only against Node's http2/tls: TLS 1.3 only, ALPN h2 only, client
// certificates required and verified against the root, the client's SPIFFE URI SAN checked
// per CONNECT stream, which is answered 200 and echoed back to itself (half-close included).
// Prints "listening HOST:PORT" once ready; logs one line per stream to stdout.
//   node hbone_server.js CERTDIR NAME EXPECTED_CLIENT_ID
const http2 = require('http2');
const { creds, uriSans, fail } = require('./common');

const [dir, name, expectedClient] = process.argv.slice(2);
if (!expectedClient) fail('usage: hbone_server.js CERTDIR NAME EXPECTED_CLIENT_ID');

const server = http2.createSecureServer({
	...creds(dir, name),
	requestCert: true,
	rejectUnauthorized: true,
	ALPNProtocols: ['h2'],
	minVersion: 'TLSv1.3',
	allowHTTP1: false,
});

server.on('stream', (stream, headers) => {
	const sock = stream.session.socket;
	const ids = uriSans(sock.getPeerCertificate());
	const who = ids.join(',') || '(no URI SAN)';
	const tag = `${headers[':method']} ${headers[':authority']} from ${who}`;
	if (headers[':method'] !== 'CONNECT') {
		console.log(`refused ${tag}: not CONNECT`);
		stream.respond({ ':status': 405 }, { endStream: true });
		return;
	}
	if (!sock.authorized || !ids.includes(expectedClient)) {
		console.log(`refused ${tag}: client identity not ${expectedClient}`);
		stream.respond({ ':status': 403 }, { endStream: true });
		return;
	}
	console.log(`accepted ${tag} over ${sock.getProtocol()} alpn=${stream.session.alpnProtocol}`);
	stream.respond({ ':status': 200 });
	let bytes = 0;
	stream.on('data', (c) => (bytes += c.length));
	stream.on('close', () =>
		console.log(`closed ${tag}: echoed ${bytes} bytes, rst=${stream.rstCode}`));
	stream.pipe(stream);
});
server.on('tlsClientError', (e) => console.log(`tls client error: ${e.message}`));
server.on('sessionError', (e) => console.log(`session error: ${e.message}`));
// LISTEN=ip:port overrides the loopback ephemeral default (e.g. a pod's 15008 in a lab).
const listen = process.env.LISTEN || '127.0.0.1:0';
const lhost = listen.slice(0, listen.lastIndexOf(':'));
server.listen(Number(listen.slice(listen.lastIndexOf(':') + 1)), lhost, () =>
	console.log(`listening ${lhost}:${server.address().port}`),
);
