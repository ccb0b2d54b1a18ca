//! Fixed RSA keys for the emulator's JWT access tokens.
//!
//! They sign only tokens of the emulator, which binds loopback and hands out tokens for anyone
//! anyway: they protect nothing and are public on purpose. Shipping them avoids generating RSA
//! keys at start-up (seconds in a debug build). Never configure sfgate to trust them for a real
//! deployment: they are only ever served by the emulator's own JWKS.

/// The keys the emulator signs with, in rotation order (public for the gateway's own unit
/// tests, which sign tokens as the emulator would).
pub const SIGNING_KEYS: [&str; 2] = [
    "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEogIBAAKCAQEA30DxpneNiTlgG/6837dFRRanfvmK7oWfpQvidwiOgPAFnteV\n\
S8CGMSTx5TAB43PpNIYIf4/pWQ9Vc2Erouz5IsRPXHGxtW2JX5d2LYvo/vvy77v4\n\
GRVyl5Aq4M0yE1lVVrO/6iWW+nekox1Do2wuxgMFuO1x+AwYFtda+aNl/N7JQ2FN\n\
GkT8I3hLcU4XLjAGtHgauuSGvBVoBPwsJDb5VNQIJpz1t5/nWQZ3Nbg7en26ePDS\n\
uRcheZVR14a9av2eZ4sKaOtjLUsye8DCz8fXT1mcB38hEmoLMWP/getWo66IWYDQ\n\
P+l/NH+5mZc80irWvcilHrNhU3rWfM2q5RlXBQIDAQABAoIBAAUpCveLkjhxRzuZ\n\
Fu7e3W7cOAaTKGHHXJTOjQSuVx47g2MUCEM7fH6R+YtldthgkKviSzuo7ROzazNj\n\
CW9XJee7/OTzSyXD6zshP53hkC2l+ja4tA00YIqIo7fAK8pPCXjFvTJhfbdlYOdU\n\
9lVxMIrq0qI0eYAVG3tvrTkm9zpciuIUgWHlDhbcGHHJeokn2eGD9S+rJhrJzsiy\n\
4Vx4ORyKYznUJn1biU/KdRrHnyOobx0hNj+pfkH2vcX1PtcYkP9qHHv43bvsgpm5\n\
FVZ88Qsp9wCU7TXmyLaWxI/mXyLIe3ONtKSUYNvbezdrj//jGI0zgd5UqtZRzOZq\n\
XolD0sMCgYEA8HMgzX/blTe7xWyIAagQQz6srkrIk47mD3wCuQ/OyG9hz9KA7mX9\n\
iSnBt1KP1T3IcKzLOSWgq7ZS8Toq+F+gkBtUKph8UGtLjEc/awEJ49blL7OfKu7Q\n\
1m8B1i5jRHmx5gbuL6TWWOwdU93hK3uwsrWV3v7fM/IymQGeQr16h1sCgYEA7bEe\n\
iWTEJ8JUV7vWSACxbnMlaGOMAQt0/OkFROKCy0kRtO0Zd8/tAdRjU8ZOS9Ob1jGa\n\
Du+/7iavZVAYoMsiARdUGXSqm/1NjVLH3DQXkdRjC3w/peUvB4SlnxZ6oTiAIRde\n\
oMhrGAwbsD+tfZ24gqz1gFQSDrzawBQGNVIeSR8CgYBWcIzyU2yVEBwotQOP1OND\n\
yVw6rBe/NDfwiRxReyVTWPdIxtwi1/d1P9WsGborZrKQDw5f1O8Vy821ervH3ljS\n\
dYCkb30BTBE0tMhPp2fuyGpL477sqD3bWLzISpTVIQqbLxKhfhiwjvFcHP+9qhGz\n\
rSPbrrR+8CrQZoyGYaeS0QKBgCjr7Hj1CzxZHZI5OYwN6n48fr05Hjpz0YFVUN3q\n\
LWB4RP8kLtVMy94bxbn/ky1E0jiPM5nMtvt2V44Wuxa7wi/z5zu2tUTD2F0zWktU\n\
AJbPvPmWO5MBIRanRKheA2DMTGrmDhmaR63NL9spK2JMDB8bTez5DF7TLsoQ6Hy3\n\
lZU7AoGAUZD8xYe4A42dbwpv+V+GAEly7hfvHAvpfwEtreH+cU5aU7hUUJ91bqWP\n\
cbc0kglo9dYsy/Ozsx9YeWle7DFeFxjTLpiIlMGmBZH/21z1Mz1ZgltLkN8thG0N\n\
02F5TUx7LOLsIaQVl9EW23gBedcnhpURqaJmV6u8l2IzSf1kpHI=\n\
-----END RSA PRIVATE KEY-----\n\
",
    "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEowIBAAKCAQEAtEZdo2kfEKNCWR31/rcPsRtjkb2UyRInVm9Gn9UUVHMeoCSx\n\
/CVR5ZT4noz5R5D2+SUGv77Tyiq13/guAB6kNmQeKXVRdM4Hi3cFLFUQ93vRsHq1\n\
QLXPUv7ScF2C1ExjEy3DCqbgI/WMmNhbJ+z+wbeusi/t6+4sHUf2WNVLdgSg8aXX\n\
FMJ3L7vwLzfQ9/5iCRPN3uWUzgGAl3lLS9WBjNCEj2NDjAcul1WqzgxLn/1j0780\n\
v9dOOvRkb8VPY6IN54zEEnIlu46kFlCbjh4axieNJ8jgdBEegyLpmKRDMeJD6Q0j\n\
kHmw59dIXaqVPrLoZjrmKP9C55BcPO1EX7WarQIDAQABAoIBABoJqscqLQI4bmIU\n\
RX5JfwL334EClp2XGWbu0g7OVi4fZX5AZpOyaTqFcoZl+rBHRCC2pBuoSotB8Xx8\n\
qlo6ksHHYqLezsnV4zmV0oG1dKqmL+JzSsAismP8qbTwkK+sq8eunaPpd+jBs9G0\n\
uC/TV3Vv3BPg/9aKk0UUaoSopApSwURzKWo/V1QzUfxpiAYDtRSbG3SVv8F0XQTV\n\
j0ULIjE7Cuv27kLHMCQSlQy2ZfqPb1/7t6YBcRIZ3zRZ8WZTD/rRt6h2Q4QZs2pG\n\
JBbCD7TuNlwAtJnJKfvcNT3W3yagPoTAXSiZQdorYWiZn0ezaJ/6JWODORid2Tl4\n\
V/TUbvECgYEA17LIkJ92OXcuJm9YqJqJ4qp4cPs5r/1j7PZwocxaW5M12H3dz+lk\n\
jFYo42Otq97mdkq9Hm+CwxmTG1yLPtK+3jGgDQzRlAUxv8x4cyd+VDRpFPbGcIC6\n\
RMU54rVnNVlUC09TYoLCo9zQkeyhQUEAuQ+keBKOkSaRYhBDyaIgB/0CgYEA1fU3\n\
YP3eFBkE1aZTzc+SSO7rha5r3NTG+DXYm3jwVYs6SyqdvRjX0dpwXhhFAeM/45rs\n\
QiXCWbDzA+bcyy6PYS3NcCqUU0GCdqK9RaxEcjJAMicmYIx5Q75Z774i+fDin83I\n\
jNL9R/Ljnq0oBvqPe/rPbkQTTjMEyFzaqZyEpHECgYBPbXlnsCCz1ow7AQOPyqB9\n\
xDJnwEsk4FUcnD8rhXm8gP/yAZ9dgV9SQiP6X+lDAeixpKHxhDSNrWw7Rh/MeYRp\n\
g7KhO5gtPqBsNVohZWiij04mtxypru1oh4viTNR9k7BcHdDh1K7h8l0nbxCOW+Zt\n\
PzJcONEg6CffCYg8xqOu7QKBgAjBgkSr3vy/kV0U83UGu5vUezr7Slq9Mm9R9M1Y\n\
A63chsQwuEfWzm4+HD8diyVqoWC1JFoIpY16GlfciMif3SpC75dZhrxpf+dO/aPu\n\
StbJi6sBwyZMWWIWViPjihbkbsHPcBejQs5A+GOz/mFau6h9OSPwEUIwAFAazLAI\n\
Qb1hAoGBAJMAhEWtNv0BzHQ5W1nlc/g/bpHNpGwsHY4i1nW+rDz+ZCHh+sfc0lGN\n\
7m85tZhVm1jlb9K51NIQQpJDoJE2zwaRohEleJy0flU4UfRLqTBSgOzyb6LWQnyy\n\
/N6mkhQFGvL5r9S6/F9Jc3KlzqllSi1P688JI4Ng6LRyAzisS1mN\n\
-----END RSA PRIVATE KEY-----\n\
",
];

/// A key the emulator never publishes: tokens signed with it must be refused.
pub const FOREIGN_KEY: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEogIBAAKCAQEAmEvg7Iuvf9nUCln6m/MNoBE/gRMunkBHNdk5YGMuJH656Er6\n\
RebmiQY3W78BkmKU1JZ85tvbgmQuWOd/j1e11wETM7i0ac401RSVOhA+HRhduDz0\n\
MYGFO/OVpju0EnA9wdBITABXy/nZlT8wvY85SdT1FtqixerxR61M8dfq7/QmbjWy\n\
Tvs47GSiFLvFyIIdlCccmbqNdQFvbbuVkCOKY8+GB3qpY2silqMPhVrOH8r3kYrb\n\
r04EPEATge17023oy4S+w0T5vX61Y/s+T4+5dU6bNbVuNF2CzmywksxCRhTEMw6j\n\
Ek3WJo4rgXZu6d5AYYwNcTvRexfMomHjHjV7MQIDAQABAoIBAAEQeurragByDQla\n\
e+l7YsxongGydVFBUiNrguzzVWOHaDS2i29KzGlkBqXaXNyk2gNDyaaELFimXN5z\n\
B4S5lbtJFipodM9x8DAWfm7U7Lqm07++Bfs2tFN62qPdzqzmbNz1Jw5rz9vwLA7t\n\
OEVKcG7rsTxCPNzTFFVVfgkz4rHDVdRF0kL95lHTc/3+KGZczElVaZzZ/+4sXs/k\n\
6ZZ1/bbmb4Ojeu8Fu9pv8aj2xk+cVqSdjb0/OaUf0TS1shjaTY5mCmSRDG4xPgeN\n\
DqfUK5nsUaNG5NSgjH+OdnmNWrRmfne5a+di4d2DH8bcgLmSU3y6q3hTdpS9PhpI\n\
mPaOwBECgYEAzOUSLdg9n/FpO9T5LWj2axRjOywA2zNuCTxIuuL1UezXKaELyqRv\n\
KCn9YDWwIpKWHNjKSmMDpXue/gwBqbC5jEb41RpgbsS9MaTAaNOQxTsOvUyBwST1\n\
1YSv0Yp9NZaHZojn4GVVSJfkI4xO0NPyjKtldzhN12frYn69lFigknkCgYEAvkhM\n\
OLnoKkwTFZPm9C4AfW/dT283D/rkD/TV9q16YkIRi2qc0PU63SgHdOTDd0d5vSvf\n\
X65miBp3IrxCl5fGr49IWohGfrI0Y1Yqti/BG8PtfEuNwcpeTpnq7vQI6sKJmtZa\n\
M9ME7Qk2f+J99/+w09V8kHrzRsQzYXoVqUbCQHkCgYBc4QoYlgl5U2msoaJCn230\n\
pE1HKW9J7kpXDWi6rt8dwArY6BP8TAXHYyFkV3H8eg5qDSvGBJRGk39DEhY+4cl6\n\
eUGa+FX2YGCS/GfsHNtnTJol3WSENUjq/Tbl+a1AeXfvVuglpEnAmnnkU1n299zf\n\
P2LDZFaE6qqc/27YrEQ9oQKBgGtQWPRxHJemOekkdc9mlk4oJbdj8LjpdW/uVDF/\n\
2xLJUh2/rdtHQsBxj+sEDZ0ayXS/5oWO1TKTQndrl17pcVuXwmWUj7VqiZMwiHwh\n\
aJZhJHHCJpuRpyhLNC05okHMH1Ec7NhnfVK1rG/pa8PPB4ogz9SoEsXpZ1TlRowm\n\
ZO15AoGAMHe1e9+hHB+1PqrD8j4BsVrTAicMPyYvVmkUDhGfuqysmBE6ao+vTZ5E\n\
2DW19JtxfZk7uKmusDWw3L6ipJRzw/3Na2rnMgN2B1awyxpXS24VaMB5nq13bFpG\n\
W0IhZawPix00YXz2ZkodoEp1vbmuOZXDfqOfIMGbiHpVaQ3U1mE=\n\
-----END RSA PRIVATE KEY-----\n\
";
