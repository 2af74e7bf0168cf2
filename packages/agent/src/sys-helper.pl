#!/usr/bin/perl
# forkd system helper: does what Node cannot (clock_settime, RNG ioctls). Started by the agent
# before the snapshot, so restored children pay no exec. Uses only perl-base builtins.
# Protocol: one command per line on stdin, one reply per line on stdout:
#   <id> ping                      -> <id> ok pong
#   <id> clock <sysno> <sec> <nsec> -> <id> ok | <id> err <reason>
#   <id> entropy <hex>             -> <id> ok | <id> err <reason>   (RNDADDENTROPY + RNDRESEEDCRNG)
#   <id> restore <sysno> <sec> <nsec> <hex> -> both of the above in one round trip
use strict;

$| = 1;
my $RNDADDENTROPY = 0x40085203;
my $RNDRESEEDCRNG = 0x5207;
my $random;

sub random_fh {
  return $random if $random;
  open($random, '<', '/dev/random') or return undef;
  return $random;
}

sub add_entropy {
  my ($bytes) = @_;
  my $fh = random_fh();
  return "open /dev/random: $!" unless $fh;
  my $req = pack('ii', length($bytes) * 8, length($bytes)) . $bytes;
  return "RNDADDENTROPY: $!" unless ioctl($fh, $RNDADDENTROPY, $req);
  return "RNDRESEEDCRNG: $!" unless ioctl($fh, $RNDRESEEDCRNG, 0);
  return 'ok';
}

while (my $line = <STDIN>) {
  chomp $line;
  my ($id, $cmd, @a) = split / /, $line;
  next unless defined $cmd;
  my $reply;
  if ($cmd eq 'ping') {
    $reply = 'ok pong';
  } elsif ($cmd eq 'clock') {
    my ($sysno, $sec, $nsec) = @a;
    my $ts = pack('qq', $sec, $nsec);
    my $r = syscall($sysno + 0, 0, $ts);
    $reply = $r == 0 ? 'ok' : "err clock_settime: $!";
  } elsif ($cmd eq 'restore') {
    # clock + entropy in one round trip (the restore path of every child).
    my ($sysno, $sec, $nsec, $hex) = @a;
    my $ts = pack('qq', $sec, $nsec);
    my $clock = syscall($sysno + 0, 0, $ts) == 0 ? 'ok' : "clock_settime: $!";
    my $rng = add_entropy(pack('H*', $hex // ''));
    $reply = ($clock eq 'ok' && $rng eq 'ok') ? 'ok' : "err clock=$clock rng=$rng";
  } elsif ($cmd eq 'entropy') {
    my $bytes = pack('H*', $a[0] // '');
    my $fh = random_fh();
    if (!$fh) {
      $reply = "err open /dev/random: $!";
    } else {
      my $req = pack('ii', length($bytes) * 8, length($bytes)) . $bytes;
      if (!ioctl($fh, $RNDADDENTROPY, $req)) {
        $reply = "err RNDADDENTROPY: $!";
      } elsif (!ioctl($fh, $RNDRESEEDCRNG, 0)) {
        $reply = "err RNDRESEEDCRNG: $!";
      } else {
        $reply = 'ok';
      }
    }
  } else {
    $reply = "err unknown command $cmd";
  }
  print "$id $reply\n";
}
