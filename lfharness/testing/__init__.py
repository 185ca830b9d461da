"""What exists only to work offline: the toolchain set-up, the module-registry stand-in, the local CA,
the Terraform Cloud fake, the local data-store stand-ins and (Go, in ``provider/``) the provider stand-in.

An operator's run with a filled ``.env`` uses none of it.
"""
