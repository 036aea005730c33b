// h2c_requests.js URL PATH...: one HTTP/2 connection with prior knowledge to URL, every PATH
// requested at once as its own stream; prints "STATUS FIRST-LINE-OF-BODY" per path, in order.
'use strict';
const http2 = require('http2');
const [url, ...paths] = process.argv.slice(2);
const c = http2.connect(url);
const out = [];
let left = paths.length;
const finish = () => {
	if (--left === 0) {
		console.log(out.join('\n'));
		c.close();
	}
};
c.on('error', (e) => {
	console.log('connection error ' + e.code);
	process.exit(1);
});
paths.forEach((p, i) => {
	const r = c.request({':path': p});
	let body = '', status = 0;
	r.on('response', (h) => { status = h[':status']; });
	r.on('data', (d) => { body += d; });
	r.on('end', () => { out[i] = status + ' ' + body.split('\n')[0]; finish(); });
	r.on('error', (e) => { out[i] = 'error ' + e.code; finish(); });
});
