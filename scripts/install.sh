#!/usr/bin/env bash
# Installs a built epmd-ng (npm run build) into DESTDIR: the bundle, its chunks and its native addon under
# /usr/lib/epmd-ng, /usr/bin/epmd-ng, the systemd units and the examples. The packages stage their
# trees with it, and the systemd tests install with it inside their container.
#   DESTDIR=/      where to install (default /)
#   UNITDIR        systemd system unit directory (default /lib/systemd/system, Debian's)
#   SRC            the built source tree (default: this checkout)
set -euo pipefail
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
DESTDIR=${DESTDIR:-/}
UNITDIR=${UNITDIR:-/lib/systemd/system}

for f in dist/epmd-ng.mjs dist/lib build/sd_native.node; do
  [ -e "$SRC/$f" ] || { echo "install.sh: $SRC/$f is missing; run npm run build first" >&2; exit 1; }
done
install -d "$DESTDIR/usr/lib/epmd-ng/lib" "$DESTDIR/usr/bin" "$DESTDIR$UNITDIR" "$DESTDIR/usr/share/doc/epmd-ng/examples"
install -m 0755 "$SRC/dist/epmd-ng.mjs" "$DESTDIR/usr/lib/epmd-ng/epmd-ng.mjs"
# The distribution's node, not whichever one is first on PATH (Debian Policy 10.4), with the node
# flag of the bundle's first line (at most one: Linux passes the rest of the line as one argument).
sed -i '1s|^#!/usr/bin/env -S node\( --[a-z-]*\)\?$|#!/usr/bin/node\1|' "$DESTDIR/usr/lib/epmd-ng/epmd-ng.mjs"
head -n1 "$DESTDIR/usr/lib/epmd-ng/epmd-ng.mjs" | grep -qx '#!/usr/bin/node\( --[a-z-]*\)\?' || {
  echo "install.sh: unexpected first line in $SRC/dist/epmd-ng.mjs" >&2
  exit 1
}
install -m 0644 "$SRC"/dist/lib/*.mjs "$DESTDIR/usr/lib/epmd-ng/lib/"
install -m 0644 "$SRC/build/sd_native.node" "$DESTDIR/usr/lib/epmd-ng/sd_native.node"
ln -sfn ../lib/epmd-ng/epmd-ng.mjs "$DESTDIR/usr/bin/epmd-ng"
install -m 0644 "$SRC/systemd/epmd-ng.service" "$SRC/systemd/epmd-ng.socket" "$SRC/systemd/epmd-ng-filter.service" \
  "$SRC/systemd/epmd-ng-ready.service" "$SRC/systemd/epmd-ng-handover.service" "$DESTDIR$UNITDIR/"
install -m 0644 "$SRC"/systemd/examples/* "$DESTDIR/usr/share/doc/epmd-ng/examples/"
