{
  "targets": [
    {
      "target_name": "fuse",
      "sources": ["src/session.c", "src/ops.c", "src/dispatch.c", "src/replies.c", "src/notify.c"],
      "cflags!": ["-O2", "-O3", "-Os", "-O0"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags fuse3)"],
      "defines": ["_GNU_SOURCE"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    }
  ]
}
