# Hello world with moves: the script of figure 2 of the Mobile Streams paper (seed 004),
# unchanged but for layout. Run it with `mstream run examples/hello.tcl`; it prints
#   [2] I am at 2
#   [2] Hello world
#   [1] I am at 1
# The shell creates two streams, attaches an agent to each and places them at sites 2 (bar)
# and 1 (foo). "Hello world" goes to foo (#a), whose handler passes it to bar (#b); bar prints
# it and moves itself to site 1 (#c), where its relocation handler says where it is (#d).

stream_create bar
stream_create foo
register_agent bar {} {
    on_stream_append {
        puts $argv
        stream_relocate 1 ;#c
    }
    on_stream_relocation {
        set my_loc [stream_location]
        puts "I am at $my_loc" ;#d
    }
}
stream_move bar 2
register_agent foo {} {
    stream_open bar
    on_stream_append {
        stream_append bar $argv ;#b
    }
}
stream_move foo 1
stream_open foo
stream_append foo "Hello world" ;#a
