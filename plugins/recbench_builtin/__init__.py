"""The built-in plugins of recbench, registered through the `recbench` entry-point group."""
