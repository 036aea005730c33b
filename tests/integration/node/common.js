'use strict';
// Shared by the Node interop peers: credentials from a scripts/certs.sh directory, SPIFFE
// URI SAN checks (Node's host name check does not apply to SPIFFE identities), the byte
// pattern of the CONNECT echo tests and a bounded run time.
const fs = require('fs');
const path = require('path');

function creds(dir, name) {
	return {
		ca: fs.readFileSync(path.join(dir, 'root-cert.pem')),
		cert: fs.readFileSync(path.join(dir, `${name}-cert.pem`)),
		key: fs.readFileSync(path.join(dir, `${name}-key.pem`)),
	};
}

// URI SANs of a certificate as Node reports it: subjectaltname is "URI:a, DNS:b, ...".
function uriSans(cert) {
	if (!cert || typeof cert.subjectaltname !== 'string') return [];
	return cert.subjectaltname
		.split(', ')
		.filter((s) => s.startsWith('URI:'))
		.map((s) => s.slice(4));
}

// A checkServerIdentity that accepts only a server proving `expected` as a URI SAN. It runs
// after the chain verified against the CA (rejectUnauthorized). state.ids records what was seen.
function spiffeCheck(expected, state) {
	return (_host, cert) => {
		state.ids = uriSans(cert);
		if (!state.ids.includes(expected)) {
			const got = state.ids.length ? state.ids.join(',') : '(no URI SAN)';
			return new Error(`server identity ${got} is not ${expected}`);
		}
		return undefined;
	};
}

// Same counting pattern as h2peer: byte i of a tunnel stream.
function pattern(i) {
	return (i * 7 + Math.floor(i / 8192)) & 0xff;
}

function fail(msg) {
	console.error(`FAIL: ${msg}`);
	process.exit(1);
}

// Fails the process if it is still running after ms (the timer does not keep it alive).
function deadline(ms, what) {
	setTimeout(() => fail(`${what}: not finished after ${ms} ms`), ms).unref();
}

module.exports = { creds, uriSans, spiffeCheck, pattern, fail, deadline };
