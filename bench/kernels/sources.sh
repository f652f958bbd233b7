# Sourced by the kernel check scripts: the C sources of the kernel library, every file the Swift package
# compiles as CRecurKernels (each guards its own architecture), so that a new kernel file needs no new list.
src=Sources/CRecurKernels
kernel_sources=("$src"/*.c)
