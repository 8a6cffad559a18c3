# SPDX-License-Identifier: LGPL-2.1-or-later
"""Whether the next kernel reads the handover at all: pure functions.

Before any LUO structure is read, the kernel that boots decides whether
there is a handover for it (Linux 7.2 is the specification):

1. ``kernel_kexec()`` freezes LUO only for an image loaded without
   ``KEXEC_PRESERVE_CONTEXT``, and only ``kexec_file_load()`` gives an image
   the KHO FDT (``kho_fill_kimage()``).
2. Early in ``setup_arch()``, ``kho_populate()`` checks the handed-over FDT
   against its own ``KHO_FDT_COMPATIBLE``; on a mismatch it prints "...is
   incompatible with..." and "disabling KHO revival": nothing preserved is
   found, and LUO comes up with no incoming session (every retrieve fails
   with ENOENT).  No panic.
3. Its command line (the one given, after or instead of its built-in
   ``CONFIG_CMDLINE``, ``arch/x86/kernel/setup.c``) sets ``kho=`` and
   ``liveupdate=``; ``luo_early_startup()`` returns at once when KHO is off
   ("Disabling liveupdate because KHO is disabled"), and
   ``liveupdate_ioctl_init()`` registers no ``/dev/liveupdate`` when LUO is
   off (the handover is still restored, so its ABI still matters).

What the next kernel is comes from the image loaded for ``kexec -e``
(identified by its build ID) or ``--next-kernel``; what could not be read
of it is a finding when it could decide a loss, never an "accept".
"""

from __future__ import annotations

from collections.abc import Iterator

from .findings import finding
from .helpers.cmdline import cmdline_bool
from .model import Finding, NextKernel, Snapshot

__all__ = ("boot_findings", "effective_cmdlines", "next_kernel_name")


def next_kernel_name(nk: NextKernel) -> str:
    """``Linux 7.3.4, build ID ...``, or its path where its banner is not
    known."""
    if nk.release is None:
        return nk.path
    build = f", build ID {nk.build_id}" if nk.build_id else ""
    return f"Linux {nk.release}{build}"


def effective_cmdlines(given: str, nk: NextKernel | None) -> list[str]:
    """
    The command lines the next kernel may boot with, given ``given``:
    x86's ``setup_arch()`` replaces it with ``builtin_cmdline``
    (``CONFIG_CMDLINE_OVERRIDE``) or puts the built-in words first (they
    are then overridden by the given ones, the last value winning); both
    when whether it overrides is unknown.
    """
    builtin = nk.builtin_cmdline if nk is not None else None
    if not builtin:
        return [given]
    appended = f"{builtin} {given}"
    if nk is not None and nk.cmdline_override is True:
        return [builtin]
    if nk is not None and nk.cmdline_override is False:
        return [appended]
    return [appended, builtin]


def _kho_abi(snap: Snapshot, n: int) -> Finding | None:
    """kho_populate(): fdt_node_check_compatible(fdt, 0, KHO_FDT_COMPATIBLE)."""
    nk = snap.next_kernel
    if nk is None or nk.kho_abi is None or snap.kho_abi is None or nk.kho_abi == snap.kho_abi:
        return None
    return finding(
        "next-kernel-kho-abi",
        f"the next kernel ({next_kernel_name(nk)}) refuses the handover: its kho_populate() "
        f"expects KHO ABI {nk.kho_abi!r}, this kernel's KHO FDT is {snap.kho_abi!r} "
        f"(\"KHO: setup: handover FDT (0x...) is incompatible with '{nk.kho_abi}'\", "
        '"KHO: disabling KHO revival"). luo_early_startup() finds no handover, LUO comes up '
        "with no incoming session, every retrieve fails with ENOENT, and the preserved memory "
        f"is reused: all {n} sessions are lost",
    )


def _cmdline(snap: Snapshot, cmdline: str) -> tuple[Finding | None, bool, str | None]:
    """The next kernel's command line, as its early_param() handlers read it
    (:func:`~luo_drgn.helpers.cmdline.cmdline_bool`: the last value
    kstrtobool() accepts wins), then as luo_early_startup() and
    liveupdate_ioctl_init() act on it: (the finding, whether the handover
    is still read, what is unknown that decides)."""
    raw = cmdline.encode()
    # Each word is None where no occurrence set the variable.
    kho, kho_word = cmdline_bool(raw, "kho")
    on, lu_word = cmdline_bool(raw, "liveupdate")
    if kho is None:
        # kho_enable's initializer, CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT: the
        # next kernel's, else (the same build) this kernel's.
        nk = snap.next_kernel
        kho = nk.kho_default if nk is not None else snap.kho_default
    if kho is False:
        kho_why = (
            f"{kho_word.decode(errors='replace')} turns KHO off"
            if kho_word is not None
            else "KHO is off by default in it (CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT is not set) "
            "and no kho=on turns it on"
        )
        said = ' ("luo: Disabling liveupdate because KHO is disabled")' if on else ""
        return (
            finding(
                "next-kernel-no-luo",
                f"the next kernel's command line: {kho_why}. luo_early_startup() finds "
                f"kho_is_enabled() false, disables LUO{said} and never retrieves the handover; "
                "liveupdate_ioctl_init() registers no /dev/liveupdate (opening it fails with "
                "ENOENT): every preserved file is lost",
            ),
            False,
            None,
        )
    if not on:
        lu_why = (
            f"{lu_word.decode(errors='replace')} turns LUO off"
            if lu_word is not None
            else "it has no liveupdate= that turns LUO on (LUO is off by default)"
        )
        return (
            finding(
                "next-kernel-no-luo",
                f"the next kernel's command line: {lu_why}. luo_early_startup() still restores "
                "the handover (a LUO ABI mismatch still panics), but liveupdate_ioctl_init() "
                "registers no /dev/liveupdate (opening it fails with ENOENT), so no session "
                "can be retrieved: every preserved file is lost",
            ),
            True,
            None,
        )
    if kho is None:
        # With it off, LUO disables itself (luo_early_startup()).
        return None, True, "its KHO default (CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT), with no kho="
    return None, True, None


# What, of the next kernel's unknowns, can lose every file by itself: its
# KHO ABI (kho_populate()) and a built-in command line not read at all.  Its
# KHO default and CONFIG_CMDLINE_OVERRIDE decide only for some command lines,
# and are weighed there (_cmdline(), effective_cmdlines()).
DECIDING_UNKNOWNS = ("kho_abi", "builtin_cmdline")


def _unknown(snap: Snapshot, phrases: list[str]) -> Iterator[Finding]:
    """What the verdict needs of the next kernel and could not be read: an
    unknown never counts as an accept where it could lose data."""
    nk = snap.next_kernel
    known = nk.unknown if nk is not None else {}
    deciding = [known[key] for key in DECIDING_UNKNOWNS if key in known] + phrases
    if not deciding:
        return
    name = f" ({next_kernel_name(nk)})" if nk is not None else ""
    yield finding(
        "next-kernel-unknown",
        f"cannot verify the next kernel{name}: unknown {'; '.join(deciding)}. Any of them "
        "can lose every preserved file: give preflight its debug info (-s DIR with its "
        "vmlinux or unpacked debug package, found by build ID)",
    )


def boot_findings(snap: Snapshot, n: int) -> tuple[list[Finding], bool]:
    """
    What the next kernel does with a handover of ``n`` sessions before any
    LUO structure is read: the findings, and whether it reads the handover
    at all (then the restore is replayed).
    """
    nk = snap.next_kernel
    out = list(_loaded_image(snap))
    if out:
        return out, False
    kho_abi = _kho_abi(snap, n)
    if kho_abi is not None:
        return [kho_abi], False
    read = True
    unknown: list[str] = []
    image = snap.kexec_image
    if snap.next_cmdline is None and image is not None and image.cmdline is None:
        # Loaded, and its command line not readable (arm64 keeps it in the
        # DTB segment's /chosen/bootargs, drivers/of/kexec.c; or its pages
        # are not in the dump): without liveupdate=on every file is lost.
        unknown.append(
            f"its command line ({image.cmdline_note or 'not readable'}; give --next-cmdline)"
        )
    if snap.next_cmdline is not None:
        outcomes = [_cmdline(snap, c) for c in effective_cmdlines(snap.next_cmdline, nk)]
        found, read, phrase = outcomes[0]
        if len(outcomes) == 2 and outcomes[1][0] != found:
            # Appended or replacing (CONFIG_CMDLINE_OVERRIDE): not known,
            # and the two boot differently.
            replaced = outcomes[1][0] or outcomes[0][0]
            assert replaced is not None and nk is not None
            unknown.append(
                f"whether its built-in command line {nk.builtin_cmdline!r} replaces the one "
                f"given (CONFIG_CMDLINE_OVERRIDE), which decides: {replaced.message}"
            )
            found = None
        if found is not None:
            out.append(found)
        if phrase is not None:
            unknown.append(phrase)
    return [*_unknown(snap, unknown), *out], read


def _loaded_image(snap: Snapshot) -> Iterator[Finding]:
    """The image loaded for kexec -e, as kernel_kexec() boots it."""
    image = snap.kexec_image
    if image is None:
        return
    lost = "the next kernel finds no handover and every preserved file is lost"
    if image.preserve_context:
        # kernel_kexec(): liveupdate_reboot() only when !preserve_context.
        yield finding(
            "kexec-image-no-handover",
            # kexec-tools: --load-preserve-context has no short option; its
            # -p is --load-panic.
            "the loaded image was loaded with KEXEC_PRESERVE_CONTEXT (kexec "
            "--load-preserve-context): kernel_kexec() skips liveupdate_reboot() for it, so LUO "
            f"never freezes or serializes anything; {lost}",
            address=image.address,
        )
    elif not image.file_mode:
        # kho_fill_kimage() is called by kimage_file_prepare_segments() only.
        yield finding(
            "kexec-image-no-handover",
            "the loaded image was loaded with kexec_load() (kexec -l without -s): only "
            "kexec_file_load() gives an image KHO data (kimage_file_prepare_segments() -> "
            f"kho_fill_kimage()), so it boots without the KHO FDT; {lost}. Load it with "
            "kexec -s -l",
            address=image.address,
        )
    elif image.kho_fdt == 0:
        yield finding(
            "kexec-image-no-handover",
            "the loaded image carries no KHO FDT: kho_fill_kimage() gave it none (KHO was off "
            f"when it was loaded), so setup_kho() passes nothing; {lost}",
            address=image.address,
        )
