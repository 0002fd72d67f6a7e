"""`cc_static_archive`: one `.a` holding the objects of a set of cc_library targets and of everything
they depend on inside callmesh (system libraries are linked by flags, so they carry no objects and
stay out). Bazel 4.2.3 has no cc_static_library; this merges the per-library archives with `ar`'s
MRI script. The objects are position independent (the `.pic.a` archives), so users may link the
archive into position-independent executables, Debian's default.
"""

def _cc_static_archive_impl(ctx):
    archives = []
    for dep in ctx.attr.deps:
        for linker_input in dep[CcInfo].linking_context.linker_inputs.to_list():
            for library in linker_input.libraries:
                archive = library.pic_static_library or library.static_library
                if archive and archive not in archives:
                    archives.append(archive)
    if not archives:
        fail("cc_static_archive %s: the deps have no objects" % ctx.label)
    out = ctx.actions.declare_file(ctx.attr.out)
    script = ctx.actions.declare_file(ctx.label.name + ".mri")
    lines = ["CREATE " + out.path] + ["ADDLIB " + a.path for a in archives] + ["SAVE", "END", ""]
    ctx.actions.write(script, "\n".join(lines))
    ctx.actions.run_shell(
        inputs = archives + [script],
        outputs = [out],
        command = "ar -M < %s && ranlib %s" % (script.path, out.path),
        mnemonic = "StaticArchive",
        progress_message = "Archiving %s" % ctx.attr.out,
    )
    return [DefaultInfo(files = depset([out]))]

cc_static_archive = rule(
    implementation = _cc_static_archive_impl,
    attrs = {
        "deps": attr.label_list(providers = [CcInfo], mandatory = True),
        "out": attr.string(mandatory = True),
    },
)
