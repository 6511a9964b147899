#!/usr/bin/env bash
# Builds epmd-ng's Debian and RPM packages from a built checkout (npm run build), with tools from
# Debian's own packages (dpkg-deb, fakeroot, rpmbuild from `rpm`; installed on demand as root):
#   dist/pkg/epmd-ng_<version>_<deb arch>.deb            e.g. epmd-ng_0.2.0_amd64.deb
#   dist/pkg/epmd-ng-<version>-<release>.<rpm arch>.rpm  e.g. epmd-ng-0.2.0-1.x86_64.rpm
# The packages are architecture-specific: build/sd_native.node is native code for this machine.
#
#   scripts/package.sh [--deb] [--rpm] [--lint]
#     --deb / --rpm   build only that package (default: both)
#     --lint          also run lintian (errors and warnings fail) and rpmlint (packaging/rpm/
#                     epmd-ng.rpmlintrc; everything it reports fails)
#
# Environment:
#   EPMD_NG_PKG_VERSION   package version (default: package.json's "version"). Only the packages'
#                         version: the bundle's --version stays what it was built with.
#   EPMD_NG_PKG_RELEASE   RPM release (default 1)
#   EPMD_NG_PKG_OUT       output directory (default dist/pkg)
#   EPMD_NG_MAINTAINER    Maintainer (.deb) and Packager (.rpm), 'Name <address>' (default: the
#                         project's maintainers, as in the spec's %changelog)
#   SOURCE_DATE_EPOCH     timestamps inside the packages (default: time of the last commit)
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."
ROOT=$PWD

build_deb=0 build_rpm=0 lint=0
for arg in "$@"; do
  case $arg in
    --deb) build_deb=1 ;;
    --rpm) build_rpm=1 ;;
    --lint) lint=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument '$arg' (try --help)" >&2; exit 1 ;;
  esac
done
if ((build_deb + build_rpm == 0)); then build_deb=1 build_rpm=1; fi

die() { echo "package.sh: $*" >&2; exit 1; }

tools=(dpkg-dev fakeroot binutils)
((build_rpm)) && tools+=(rpm)
((lint && build_deb)) && tools+=(lintian)
((lint && build_rpm)) && tools+=(rpmlint)
bash scripts/ensure-packages.sh "${tools[@]}"

for f in dist/epmd-ng.mjs dist/lib build/sd_native.node; do
  [[ -e $f ]] || die "$f is missing; run npm run build first"
done
[[ -d node_modules ]] || die "node_modules is missing (the bundled packages' licences are read from it); run npm ci"

VERSION=${EPMD_NG_PKG_VERSION:-$(node -p 'require("./package.json").version')}
# Valid as a native Debian version and as an RPM Version: no '-', starts with a digit.
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version '$VERSION' must start with a digit and contain only letters, digits, '.', '+' and '~'"
RELEASE=${EPMD_NG_PKG_RELEASE:-1}
[[ $RELEASE =~ ^[0-9][A-Za-z0-9.]*$ ]] || die "release '$RELEASE' must start with a digit (letters, digits and '.')"
OUT=${EPMD_NG_PKG_OUT:-$ROOT/dist/pkg}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || stat -c %Y package.json)
fi
export SOURCE_DATE_EPOCH
MAINTAINER=${EPMD_NG_MAINTAINER:-epmd-ng maintainers <maintainers@users.noreply.r-seed-6436eb06.example>}
[[ $MAINTAINER =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]] || die "set EPMD_NG_MAINTAINER to 'Name <address>' (got '$MAINTAINER')"
DEB_ARCH=$(dpkg --print-architecture)
RPM_ARCH=$(uname -m)

work=$(mktemp -d "${TMPDIR:-/tmp}/epmd-ng-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The files both packages share, staged under $1 with unit directory $2 and settings file $3.
stage_common() {
  local dest=$1 unitdir=$2 settings=$3
  DESTDIR=$dest UNITDIR=$unitdir SRC=$ROOT bash scripts/install.sh
  install -D -m 0644 packaging/epmd-ng.default "$dest$settings"
}

build_deb() {
  local dest=$work/deb name=epmd-ng_${VERSION}_${DEB_ARCH}.deb doc
  stage_common "$dest" /lib/systemd/system /etc/default/epmd-ng
  doc=$dest/usr/share/doc/epmd-ng
  # As dh_strip would: no symbols, no .comment/.note sections (the build id stays).
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$dest/usr/lib/epmd-ng/sd_native.node"
  install -d "$dest/usr/share/man/man8" "$dest/usr/share/lintian/overrides"
  sed "s/@VERSION@/$VERSION/" packaging/epmd-ng.8 | gzip -9n >"$dest/usr/share/man/man8/epmd-ng.8.gz"
  gzip -9n <README.md >"$doc/README.md.gz"
  {
    sed "s/@COPYRIGHT@/$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) ${MAINTAINER%% <*}/" packaging/deb/copyright.in
    echo
    node packaging/bundled.mjs deb-copyright
  } >"$doc/copyright"
  # A native package's changelog: one entry for the version being built.
  printf 'epmd-ng (%s) unstable; urgency=medium\n\n  * Package of epmd-ng %s built from its repository (scripts/package.sh).\n\n -- %s  %s\n' \
    "$VERSION" "$VERSION" "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n >"$doc/changelog.gz"
  install -m 0644 packaging/deb/lintian-overrides "$dest/usr/share/lintian/overrides/epmd-ng"

  # Control area.
  install -d "$dest/DEBIAN"
  install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$dest/DEBIAN/"
  install -m 0644 packaging/deb/triggers packaging/deb/conffiles "$dest/DEBIAN/"
  # Library dependencies of the native addon (libc6), as dh_shlibdeps computes them. The napi_*
  # symbols are resolved from the node binary at load time, hence --ignore-missing-info and the
  # filtered "symbol ... not found" warnings.
  local shl=$work/shlibdeps shlibs
  install -d "$shl/debian"
  printf 'Source: epmd-ng\n\nPackage: epmd-ng\nArchitecture: any\n' >"$shl/debian/control"
  shlibs=$(cd "$shl" && dpkg-shlibdeps -O --ignore-missing-info -e"$dest/usr/lib/epmd-ng/sd_native.node" 2> >(grep -v 'symbol napi_' >&2))
  shlibs=${shlibs#shlibs:Depends=}
  [[ $shlibs == libc6* ]] || die "unexpected library dependencies of the addon: '$shlibs'"
  local size
  size=$(du -sk --apparent-size --exclude=DEBIAN "$dest" | cut -f1)
  sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$DEB_ARCH/" -e "s/@MAINTAINER@/$MAINTAINER/" \
    -e "s/@INSTALLED_SIZE@/$size/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" packaging/deb/control.in >"$dest/DEBIAN/control"
  (cd "$dest" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$dest/DEBIAN/md5sums"
  chmod 0644 "$dest/DEBIAN/md5sums" "$dest/DEBIAN/control"
  find "$dest" -depth -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

  fakeroot dpkg-deb --root-owner-group -Zxz --build "$dest" "$work/$name" >/dev/null
  mv -f "$work/$name" "$OUT/$name"
  echo "$OUT/$name"
}

build_rpm() {
  local top=$work/rpm provides license name
  provides=$(node packaging/bundled.mjs rpm-provides | sed 's/^Provides: //' | paste -sd, - | sed 's/,/, /g')
  license=$(node packaging/bundled.mjs rpm-license)
  install -d "$top"/{BUILD,RPMS,SOURCES,SPECS,SRPMS,BUILDROOT}
  # __os_install_post: Debian's brp scripts are Fedora's, but brp-compress needs bash and runs
  # under dash here; the spec's %install already strips the addon and compresses the man page,
  # and install.sh sets the modes brp-elfperms would.
  # packager: rpm's Packager tag comes from the build, not from the spec (Fedora forbids it there).
  # --nodeps: the BuildRequires (nodejs, binutils) are Debian packages here, unknown to rpm's
  # database; ensure-packages.sh above and `node` on PATH stand for them.
  rpmbuild -bb --quiet --nodeps \
    --define "_topdir $top" \
    --define "_tmppath $top/tmp" \
    --define "epmd_ng_src $ROOT" \
    --define "epmd_ng_version $VERSION" \
    --define "epmd_ng_release $RELEASE" \
    --define "epmd_ng_license $license" \
    --define "epmd_ng_bundled $provides" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    --define "_buildhost epmd-ng-build" \
    --define "packager $MAINTAINER" \
    --define "__os_install_post %{nil}" \
    --target "$RPM_ARCH" \
    packaging/rpm/epmd-ng.spec >/dev/null
  name=epmd-ng-$VERSION-$RELEASE.$RPM_ARCH.rpm
  [[ -f $top/RPMS/$RPM_ARCH/$name ]] || die "rpmbuild did not produce $name"
  mv -f "$top/RPMS/$RPM_ARCH/$name" "$OUT/$name"
  echo "$OUT/$name"
}

status=0
if ((build_deb)); then
  deb=$(build_deb)
  echo "package.sh: built $deb" >&2
  if ((lint)); then
    lintian --fail-on error,warning --display-info "$deb" || { status=1; echo "package.sh: lintian failed" >&2; }
  fi
fi
if ((build_rpm)); then
  rpm_file=$(build_rpm)
  echo "package.sh: built $rpm_file" >&2
  if ((lint)); then
    rpmlint --strict -c packaging/rpm/rpmlint.toml -r packaging/rpm/epmd-ng.rpmlintrc "$rpm_file" || { status=1; echo "package.sh: rpmlint failed" >&2; }
  fi
fi
exit $status
