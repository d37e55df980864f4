"""Offline repositories built from Debian's packages.

Bazel 4.2.3 (Debian's bazel-bootstrap) would otherwise download rules_cc,
rules_java, platforms, the coverage tools, GoogleTest and Abseil. Each of them
is defined here from files that `tools/bazel` installs with apt.
"""

_RULES_CC = "/usr/share/bazel/rules/cc"

# rules_cc 0.0.4 is written for Bazel >= 5: these two files load
# `use_cpp_toolchain` from @bazel_tools, which 4.2.3 lacks.
_RULES_CC_PATCHED = [
    "cc/private/rules_impl/compiler_flag.bzl",
    "cc/private/rules_impl/cc_flags_supplier.bzl",
]

def _mirror(ctx, root, skip):
    """Symlinks every file under `root` into the repository, except `skip`."""
    result = ctx.execute(["find", root, "-type", "f"])
    if result.return_code != 0:
        fail("cannot list %s (is the Debian package installed?): %s" % (root, result.stderr))
    for path in result.stdout.splitlines():
        relative = path[len(root) + 1:]
        if relative not in skip:
            ctx.symlink(path, relative)

def _rules_cc_impl(ctx):
    if not ctx.path(_RULES_CC).exists:
        fail("%s is missing: run `apt-get install bazel-rules-cc` (tools/bazel does it)" % _RULES_CC)
    _mirror(ctx, _RULES_CC, _RULES_CC_PATCHED)
    for relative in _RULES_CC_PATCHED:
        text = ctx.read(_RULES_CC + "/" + relative)
        text = text.replace(', "use_cpp_toolchain")', ")")
        text = text.replace("use_cpp_toolchain()", '["@bazel_tools//tools/cpp:toolchain_type"]')
        ctx.file(relative, text)

_rules_cc = repository_rule(implementation = _rules_cc_impl, local = True)

# Upstream Abseil label -> pkg-config module (libabsl-dev ships absl_*.pc).
_ABSL_TARGETS = {
    "absl/algorithm:container": "absl_algorithm_container",
    "absl/base": "absl_base",
    "absl/base:core_headers": "absl_core_headers",
    "absl/cleanup": "absl_cleanup",
    "absl/container:fixed_array": "absl_fixed_array",
    "absl/container:flat_hash_map": "absl_flat_hash_map",
    "absl/container:flat_hash_set": "absl_flat_hash_set",
    "absl/container:inlined_vector": "absl_inlined_vector",
    "absl/flags:commandlineflag": "absl_flags_commandlineflag",
    "absl/flags:flag": "absl_flags",
    "absl/flags:parse": "absl_flags_parse",
    "absl/flags:reflection": "absl_flags_reflection",
    "absl/flags:usage": "absl_flags_usage",
    "absl/functional:any_invocable": "absl_any_invocable",
    "absl/hash": "absl_hash",
    "absl/functional:function_ref": "absl_function_ref",
    "absl/status": "absl_status",
    "absl/status:statusor": "absl_statusor",
    "absl/strings": "absl_strings",
    "absl/strings:str_format": "absl_str_format",
    "absl/synchronization": "absl_synchronization",
    "absl/time": "absl_time",
    "absl/types:span": "absl_span",
    "absl/types:optional": "absl_optional",
}

def _pkg_config_libs(ctx, module):
    result = ctx.execute(["pkg-config", "--libs", module])
    if result.return_code != 0:
        fail("pkg-config --libs %s failed (run `apt-get install libabsl-dev pkg-config`; tools/bazel does it): %s" % (module, result.stderr))
    return [f for f in result.stdout.strip().replace("\n", " ").split(" ") if f]

def _abseil_impl(ctx):
    if not ctx.path("/usr/include/absl/base/config.h").exists:
        fail("Abseil headers are missing: run `apt-get install libabsl-dev` (tools/bazel does it)")
    packages = {}
    for label, module in _ABSL_TARGETS.items():
        package, _, name = label.partition(":")
        if not name:
            name = package.split("/")[-1]
        packages.setdefault(package, []).append((name, _pkg_config_libs(ctx, module)))
    for package, targets in packages.items():
        lines = [
            'load("@rules_cc//cc:defs.bzl", "cc_library")',
            'package(default_visibility = ["//visibility:public"])',
        ]
        for name, libs in targets:
            lines.append("cc_library(name = %r, linkopts = %r)" % (name, libs))
        ctx.file(package + "/BUILD", "\n".join(lines) + "\n")
    ctx.file("BUILD", "")
    ctx.file("WORKSPACE", 'workspace(name = "com_google_absl")\n')

_abseil = repository_rule(implementation = _abseil_impl, local = True)

def _libseccomp_impl(ctx):
    if not ctx.path("/usr/include/seccomp.h").exists:
        fail("libseccomp headers are missing: run `apt-get install libseccomp-dev` (tools/bazel does it)")
    result = ctx.execute(["pkg-config", "--libs", "libseccomp"])
    if result.return_code != 0:
        fail("pkg-config --libs libseccomp failed: %s" % result.stderr)
    libs = [f for f in result.stdout.strip().split(" ") if f]
    ctx.file("BUILD", "\n".join([
        'load("@rules_cc//cc:defs.bzl", "cc_library")',
        'package(default_visibility = ["//visibility:public"])',
        "# The system's libseccomp (Debian's libseccomp-dev): <seccomp.h> is in the",
        "# default include path.",
        "cc_library(name = \"libseccomp\", linkopts = %r)" % libs,
    ]) + "\n")
    ctx.file("WORKSPACE", 'workspace(name = "libseccomp")\n')

_libseccomp = repository_rule(implementation = _libseccomp_impl, local = True)

def _openssl_impl(ctx):
    if not ctx.path("/usr/include/openssl/ssl.h").exists:
        fail("OpenSSL headers are missing: run `apt-get install libssl-dev` (tools/bazel does it)")
    targets = {"ssl": "libssl", "crypto": "libcrypto"}
    lines = [
        'load("@rules_cc//cc:defs.bzl", "cc_library")',
        'package(default_visibility = ["//visibility:public"])',
        "# The system's OpenSSL 3 (Debian's libssl-dev): <openssl/*.h> is in the",
        "# default include path. The labels are those of the Bazel Central",
        "# Registry's openssl module (@openssl//:ssl, @openssl//:crypto).",
    ]
    for name, module in targets.items():
        result = ctx.execute(["pkg-config", "--libs", module])
        if result.return_code != 0:
            fail("pkg-config --libs %s failed: %s" % (module, result.stderr))
        libs = [f for f in result.stdout.strip().split(" ") if f]
        deps = [":crypto"] if name == "ssl" else []
        lines.append("cc_library(name = %r, linkopts = %r, deps = %r)" % (name, libs, deps))
    ctx.file("BUILD", "\n".join(lines) + "\n")
    ctx.file("WORKSPACE", 'workspace(name = "openssl")\n')

_openssl = repository_rule(implementation = _openssl_impl, local = True)

_COVERAGE_BUILD = """
# `cc_test` analysis names these two targets; Bazel downloads them otherwise.
# They run only under `bazel coverage`, which this offline setup does not
# support: they fail loudly rather than pretend to produce a report.
package(default_visibility = ["//visibility:public"])

sh_binary(name = "lcov_merger", srcs = ["unsupported.sh"])

sh_binary(name = "coverage_report_generator", srcs = ["unsupported.sh"])
"""

_COVERAGE_SCRIPT = """#!/bin/sh
echo "conet: 'bazel coverage' is not supported by the offline setup; build with --config=dbg and --copt=--coverage and run gcov/lcov directly" >&2
exit 1
"""

def _coverage_tools_impl(ctx):
    ctx.file("WORKSPACE", 'workspace(name = "remote_coverage_tools")\n')
    ctx.file("BUILD", _COVERAGE_BUILD)
    ctx.file("unsupported.sh", _COVERAGE_SCRIPT, executable = True)

_coverage_tools = repository_rule(implementation = _coverage_tools_impl)

def conet_system_dependencies():
    """Defines every external repository the build needs, offline."""
    _rules_cc(name = "rules_cc")
    native.local_repository(name = "rules_java", path = "/usr/share/bazel/rules/java")
    native.local_repository(name = "platforms", path = "/usr/share/bazel/tools/platforms")
    _coverage_tools(name = "remote_coverage_tools")
    native.new_local_repository(
        name = "com_google_googletest",
        path = "/usr/include",
        build_file = "@conet//third_party:googletest.BUILD",
    )
    native.new_local_repository(
        name = "com_github_google_benchmark",
        path = "/usr/include/benchmark",
        build_file = "@conet//third_party:benchmark.BUILD",
    )
    _abseil(name = "com_google_absl")
    _libseccomp(name = "libseccomp")
    _openssl(name = "openssl")
