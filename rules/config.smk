# The resolved config: what every job reads. A rule output, so a dry run writes nothing into
# the checkout; its params are the config's text, so any config change (a file, a --config
# override, a new schema default) reruns it, and through it every job that reads it.


localrules:
    resolved_config,


rule resolved_config:
    output:
        RESOLVED_CONFIG,
    log:
        str(layout.log_file(RUN, "config", "resolved_config")),
    params:
        text=RESOLVED_CONFIG_TEXT,
    run:
        from edco.io import write_text

        write_text(output[0], params.text)
        write_text(log[0], f"validated {CONFIG_SOURCE} -> {output[0]}\n")
